"""Throughput of the Service Bus adapter on the local broker: publish, and consume +
complete, as the API and the worker use them.

    .venv/bin/python -m bench.servicebus_throughput [--messages 2000] [--concurrency 16]

Writes bench/results/<date>-servicebus.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from app.application.ports import BusMessage, ReceivedMessage
from bench.report import progress, write_results
from sbemu.config import queue_declaration as queue
from sbemu.config import write_config
from sbemu.launcher import start_broker
from storage.servicebus_bus import ServiceBusMessageBus


async def publish(bus: ServiceBusMessageBus, q: str, n: int, concurrency: int) -> float:
    """Messages per second published with ``concurrency`` callers (as concurrent POSTs)."""
    body = {"match_id": "x" * 24}
    next_id = iter(range(n))
    done = 0

    async def caller() -> None:
        nonlocal done
        for i in next_id:
            await bus.publish(q, BusMessage(f"m{i:08d}", body, "match.completed"))
            done += 1
            if done % 100 == 0 or done == n:
                progress(f"publish x{concurrency}", done, n)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


async def consume(bus: ServiceBusMessageBus, q: str, n: int, batch: int) -> float:
    """Messages per second received and completed, as the worker does (completes run
    concurrently with the next receive)."""
    done = 0
    pending: set[asyncio.Task[None]] = set()
    start = time.perf_counter()

    async def settle(r: ReceivedMessage) -> None:
        nonlocal done
        await bus.complete(r)
        done += 1
        if done % 100 == 0 or done == n:
            progress(f"receive+complete b{batch}", done, n)

    received = 0
    while received < n:
        got = await bus.receive(q, batch, 2.0)
        if not got:
            break
        received += len(got)
        for r in got:
            task = asyncio.create_task(settle(r))
            pending.add(task)
            task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    return done / (time.perf_counter() - start)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="sbbench-"))
    queues = [queue(f"b{i}", lock_s=60, dedup=True) for i in range(len(args.concurrency))]
    config = write_config(work / "Config.json", queues)
    broker = start_broker(work / "data", config, log=work / "broker.log")
    results: dict[str, Any] = {"runs": []}
    try:
        bus = ServiceBusMessageBus(broker.connection_string)
        try:
            for i, concurrency in enumerate(args.concurrency):
                q = f"b{i}"
                sent = await publish(bus, q, args.messages, concurrency)
                got = await consume(bus, q, args.messages, args.batch)
                results["runs"].append(
                    {
                        "publish_concurrency": concurrency,
                        "receive_batch": args.batch,
                        "messages": args.messages,
                        "publish_msgs_per_s": round(sent, 1),
                        "consume_complete_msgs_per_s": round(got, 1),
                    }
                )
        finally:
            await bus.close()
    finally:
        broker.stop()
    return results


def report(results: dict[str, Any]) -> str:
    """The Markdown table."""
    lines = [
        "| publishers | messages | publish msg/s | receive batch | receive+complete msg/s |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in results["runs"]:
        lines.append(
            f"| {r['publish_concurrency']} | {r['messages']} | {r['publish_msgs_per_s']} "
            f"| {r['receive_batch']} | {r['consume_complete_msgs_per_s']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--batch", type=int, default=32)
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    write_results("servicebus", "Service Bus adapter on the local broker", outcome, report(outcome))
