"""The worker's slots go to the queue that has messages: an idle queue's wait holds one."""

from __future__ import annotations

import asyncio
from typing import Any

from app.application.messages import MATCHES_QUEUE, match_completed
from app.application.ports import SagaReply
from app.application.worker import Worker
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


class CountingBus(InMemoryMessageBus):
    """Records what each receive asked for: (how many messages, how long it may wait)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[int, float]] = []

    async def receive(self, queue: str, max_messages: int, max_wait_s: float) -> Any:
        self.asked.append((max_messages, max_wait_s))
        return await super().receive(queue, max_messages, max_wait_s)


async def test_an_idle_queue_keeps_no_more_than_one_slot_from_the_busy_one() -> None:
    bus, runner = CountingBus(), HeldRunner()
    # Waits of a second: before, the empty player-updates queue held every free slot
    # through its wait, and the matches started a second late, one wait at a time.
    worker = Worker(bus, runner, concurrency=8, receive_wait_s=1.0)  # type: ignore[arg-type]
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(2.2)  # both queues found empty: both loops are idle now
        # A wait holds a slot for each message it may bring: one.
        assert {n for n, wait in bus.asked if wait == 1.0} == {1}, bus.asked
        for i in range(8):
            await bus.publish(MATCHES_QUEUE, match_completed(f"m-{i}"))
        # Every slot but the one the idle queue's wait holds, well within that wait.
        assert await wait_for(lambda: runner.running == 7, 0.5), runner.running
        await asyncio.sleep(0.3)
        assert runner.running == 7  # the last waits for a slot: never over the concurrency
        runner.release.set()
        assert await wait_for(lambda: bus.depth(MATCHES_QUEUE) == 0, 3.0)
    finally:
        worker.stop()
        runner.release.set()
        await task


async def test_a_burst_is_taken_in_one_receive_after_the_first_message() -> None:
    bus, runner = InMemoryMessageBus(), HeldRunner()
    worker = Worker(bus, runner, concurrency=8, receive_wait_s=1.0)  # type: ignore[arg-type]
    for i in range(6):
        await bus.publish(MATCHES_QUEUE, match_completed(f"m-{i}"))
    task = asyncio.create_task(worker.run())
    try:
        assert await wait_for(lambda: runner.running == 6, 0.5), runner.running
    finally:
        worker.stop()
        runner.release.set()
        await task
