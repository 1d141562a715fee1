"""Cost of one player write (an entity group transaction) on Azurite, through
``TablePlayerStore.apply`` as the grains call it: one match folded into a known record,
the marker created and the record replaced under its etag, in one transaction.

    .venv/bin/python -m bench.table_transactions [--transactions 2000] [--concurrency 1 32]

Two variants of the store: ``sdk`` (the SDK's ``submit_transaction``, as before
``storage.table_batch``) and ``table_batch`` (what the adapters use). Reports transactions
per second, the client's CPU per transaction (process time of this process only) and
Azurite's (its own process, from /proc), and a cProfile of the client side of sequential
applies. Writes bench/results/<date>-table-transactions.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import random
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.application.ports import PlayerSnapshot
from app.domain.aggregation import aggregate
from app.domain.stats import ServiceRecord, StatDelta
from app.domain.validation import parse_match
from bench.report import progress, write_results
from devstack.processes import start_azurite
from storage.azure_errors import map_azure_errors
from storage.table_players import Operation, TablePlayerStore
from storage.tables import open_table_storage
from tests.support.matches import random_match

PROFILE_TOP = 15
ROOT = Path(__file__).resolve().parent.parent


def player_deltas(players: int, per_player: int, seed: int = 7) -> list[list[StatDelta]]:
    """``per_player`` realistic deltas for each of ``players`` players, oldest first (as
    the API validates and aggregates them: one 8-player match gives 8 deltas)."""
    rng = random.Random(seed)
    ids = [f"bench{seed}p{i:05d}" for i in range(players)]
    out: dict[str, list[StatDelta]] = {pid: [] for pid in ids}
    now = datetime.now(UTC)
    n = 0
    while any(len(v) < per_player for v in out.values()):
        lineup = [pid for pid in ids if len(out[pid]) < per_player][:8]
        ended = now - timedelta(hours=1) + timedelta(seconds=n)
        match = parse_match(random_match(rng, f"bm{seed}-{n}", lineup, len(lineup), ended), now)
        for pid, delta in aggregate(match).items():
            out[pid].append(delta)
        n += 1
    return [out[pid] for pid in ids]


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc), to see Azurite's share."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(
    store: TablePlayerStore,
    work: Sequence[list[StatDelta]],
    concurrency: int,
    label: str,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """Apply every delta, one transaction each; each worker owns its players (no
    conflicts), as a grain owns its player. The first apply of a player creates its
    record; the rest replace it under the etag the previous apply returned."""
    total = sum(len(d) for d in work)
    done = 0
    next_player = iter(range(len(work)))

    async def worker() -> None:
        nonlocal done
        for i in next_player:
            snapshot = PlayerSnapshot(ServiceRecord(work[i][0].player_id))
            for delta in work[i]:
                outcome = await store.apply(snapshot, [delta])
                assert outcome.applied == (delta.match_id,), outcome
                snapshot = outcome.snapshot
                done += 1
                if done % 100 == 0 or done == total:
                    progress(label, done, total)

    server = process_cpu_s(server_pid) if server_pid else 0.0
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    server = process_cpu_s(server_pid) - server if server_pid else 0.0
    return {
        "concurrency": concurrency,
        "transactions": total,
        "transactions_per_s": round(total / wall, 1),
        "client_cpu_ms_per_transaction": round(1000 * cpu / total, 2),
        "client_cpu_share_of_wall": round(cpu / wall, 2),
        "azurite_cpu_ms_per_transaction": round(1000 * server / total, 2),
    }


class SdkTransactionPlayerStore(TablePlayerStore):
    """The store as it was before ``storage.table_batch``: the SDK's submit_transaction."""

    async def _submit(self, ops: list[Operation]) -> list[Mapping[str, Any]]:
        with map_azure_errors():
            return list(await self._table.submit_transaction(ops))


VARIANTS: dict[str, type[TablePlayerStore]] = {
    "sdk": SdkTransactionPlayerStore,
    "table_batch": TablePlayerStore,
}


async def profile(store: TablePlayerStore, work: Sequence[list[StatDelta]]) -> dict[str, Any]:
    """cProfile of sequential applies: the top functions by cumulative time among those
    reachable from ``submit_transaction`` in the call graph (a coroutine's time counts only
    while it runs, so this is the client's CPU, not the wait for Azurite)."""
    profiler = cProfile.Profile()
    profiler.enable()
    result = await run(store, work, 1, "profile x1")
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    stats.calc_callees()
    callees: dict[Any, dict[Any, Any]] = stats.all_callees  # type: ignore[attr-defined]
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    todo = [f for f in entries if f[2] == "submit_transaction"]
    under = set(todo)
    while todo:
        for callee in callees.get(todo.pop(), {}):
            if callee not in under:
                under.add(callee)
                todo.append(callee)
    rows = []
    for func in under:
        file, line, name = func
        where = f"{file}:{line}({name})".split("site-packages/")[-1].split(f"{ROOT}/")[-1]
        rows.append((entries[func][3], where))
    rows.sort(reverse=True)
    n = result["transactions"]
    top = [{"function": f, "cum_ms_per_tx": round(1000 * t / n, 3)} for t, f in rows[:PROFILE_TOP]]
    return {"transactions": n, "top": top}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    work_dir = Path(tempfile.mkdtemp(prefix="txbench-"))
    azurite = start_azurite(work_dir / "azurite")
    results: dict[str, Any] = {
        "per_player": args.per_player,
        # The box is shared: a busy neighbour inflates CPU times and lowers rates.
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "runs": [],
        "profiles": {},
    }
    try:
        storage = await open_table_storage(azurite.connection_string, prefix="bench")
        try:
            table = storage.tables.get_table_client("benchplayers")
            for v, variant in enumerate(args.variants):
                store = VARIANTS[variant](table)
                # Warm up: connections, the SDK's lazy imports, Azurite's table.
                await run(store, player_deltas(8, 4, seed=10 * v), 8, f"{variant} warm-up")
                for i, concurrency in enumerate(args.concurrency):
                    players = max(concurrency, args.transactions // args.per_player)
                    work = player_deltas(players, args.per_player, seed=100 * v + i + 1)
                    label = f"{variant} x{concurrency}"
                    run_ = await run(store, work, concurrency, label, azurite.proc.pid)
                    results["runs"].append({"variant": variant, **run_})
                if args.profile:
                    work = player_deltas(args.profile // args.per_player, args.per_player, 99 + v)
                    results["profiles"][variant] = await profile(store, work)
        finally:
            await table.close()
            await storage.close()
    finally:
        azurite.stop()
    return results


def report(results: dict[str, Any]) -> str:
    """The Markdown tables."""
    lines = [
        f"Load average (1 min) at start: {results['load_average_1m_at_start']} on "
        f"{os.cpu_count()} CPUs; {results['per_player']} applies per player.",
        "",
        "| submit | concurrency | transactions | transactions/s | client CPU ms/tx "
        "| client CPU/wall | Azurite CPU ms/tx |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["runs"]:
        lines.append(
            f"| {r['variant']} | {r['concurrency']} | {r['transactions']} "
            f"| {r['transactions_per_s']} | {r['client_cpu_ms_per_transaction']} "
            f"| {r['client_cpu_share_of_wall']} | {r['azurite_cpu_ms_per_transaction']} |"
        )
    for variant, prof in results["profiles"].items():
        lines += [
            "",
            f"cProfile of `{variant}`, {prof['transactions']} sequential applies, top "
            f"{PROFILE_TOP} by cumulative time under submit_transaction (cProfile makes it "
            "about 1.5x slower):",
            "",
            "| function | cumulative ms/tx |",
            "|---|---:|",
        ]
        lines += [f"| `{row['function']}` | {row['cum_ms_per_tx']} |" for row in prof["top"]]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--per-player", type=int, default=4, help="applies per player")
    parser.add_argument("--profile", type=int, default=400, help="profiled applies (0: none)")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    write_results("table-transactions", "Player writes on Azurite", outcome, report(outcome))
