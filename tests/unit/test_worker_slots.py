"""The worker's slots go to the queue that has messages: an idle queue's wait holds none."""

from __future__ import annotations

import asyncio

from app.messages import MATCHES_QUEUE, match_completed
from app.ports import SagaReply
from app.worker import Worker
from storage.memory_bus import InMemoryMessageBus


class HeldRunner:
    """A saga runner whose runs wait until released, counting those in flight."""

    def __init__(self) -> None:
        self.running = 0
        self.release = asyncio.Event()

    async def run(self, match_id: str, *args: object, **kwargs: object) -> SagaReply:
        self.running += 1
        try:
            await self.release.wait()
        finally:
            self.running -= 1
        return SagaReply("completed")

    def __getattr__(self, name: str) -> object:  # every other verb runs the same way
        return self.run


async def wait_for(predicate: object, timeout_s: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.01)
    return False


async def test_an_idle_queue_keeps_no_slot_from_the_busy_one() -> None:
    bus, runner = InMemoryMessageBus(), HeldRunner()
    # Waits of a second: before, the empty player-updates queue held every free slot
    # through its wait, and the matches started a second late, one wait at a time.
    worker = Worker(bus, runner, concurrency=4, receive_wait_s=1.0)  # type: ignore[arg-type]
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(2.2)  # both queues found empty: both loops are idle now
        for i in range(4):
            await bus.publish(MATCHES_QUEUE, match_completed(f"m-{i}"))
        assert await wait_for(lambda: runner.running == 4, 0.5), runner.running
        await bus.publish(MATCHES_QUEUE, match_completed("m-5"))
        await asyncio.sleep(0.3)
        assert runner.running == 4  # never more than the concurrency
        runner.release.set()
        assert await wait_for(lambda: bus.depth(MATCHES_QUEUE) == 0, 3.0)
    finally:
        worker.stop()
        runner.release.set()
        await task
