"""A message whose step failed transiently goes back after a back-off, not at once: a
storage blip must not use up its deliveries and dead-letter it."""

from __future__ import annotations

import asyncio

from app.application.commands import SagaCommand
from app.application.messages import MATCHES_QUEUE, match_completed
from app.application.ports import SagaReply
from app.application.worker import Worker
from app.domain.errors import StorageUnavailable
from app.domain.retry import RetryPolicy
from storage.memory_bus import InMemoryMessageBus


class FailingRunner:
    """Every step fails as storage that is down would make it fail."""

    def __init__(self) -> None:
        self.calls = 0

    async def handle(self, command: SagaCommand) -> SagaReply:
        self.calls += 1
        raise StorageUnavailable("storage is down")


async def test_a_transient_failure_holds_the_message_back_then_returns_it() -> None:
    bus = InMemoryMessageBus()
    worker = Worker(bus, FailingRunner(), redelivery=RetryPolicy(0.2, 0.2, jitter=0.0))
    await bus.publish(MATCHES_QUEUE, match_completed("m1"))
    [received] = await bus.receive(MATCHES_QUEUE, 1, 1.0)
    await worker.handle(MATCHES_QUEUE, received)
    assert worker.counters.abandoned == 1
    assert worker.counters.held_back_s >= 0.19
    [again] = await bus.receive(MATCHES_QUEUE, 1, 1.0)  # back, not dead-lettered
    assert again.delivery_count == 1


async def test_each_delivery_waits_longer_up_to_the_cap() -> None:
    bus = InMemoryMessageBus(max_delivery_count=10)
    worker = Worker(bus, FailingRunner(), redelivery=RetryPolicy(0.01, 0.04, jitter=0.0))
    await bus.publish(MATCHES_QUEUE, match_completed("m1"))
    held = []
    for _ in range(4):
        [received] = await bus.receive(MATCHES_QUEUE, 1, 1.0)
        before = worker.counters.held_back_s
        await worker.handle(MATCHES_QUEUE, received)
        held.append(worker.counters.held_back_s - before)
    # 0.01, 0.02, 0.04, then capped at 0.04 (timers may fire a little late, never early).
    for got, want in zip(held, [0.01, 0.02, 0.04, 0.04], strict=True):
        assert want * 0.9 <= got < want + 0.5


async def test_a_stopping_worker_lets_a_failed_message_go_back_at_once() -> None:
    bus = InMemoryMessageBus()
    worker = Worker(bus, FailingRunner(), redelivery=RetryPolicy(30.0, 30.0, jitter=0.0))
    await bus.publish(MATCHES_QUEUE, match_completed("m1"))
    [received] = await bus.receive(MATCHES_QUEUE, 1, 1.0)
    worker.stop()
    await asyncio.wait_for(worker.handle(MATCHES_QUEUE, received), 5.0)
    assert worker.counters.abandoned == 1
    assert worker.counters.held_back_s < 5.0
