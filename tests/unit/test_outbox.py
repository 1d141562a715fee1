"""The outbox sweeper and the accept-then-publish path, over in-memory adapters."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from actors.grains import PlayerGrainHost
from app.application.commands import StartSaga
from app.application.messages import MATCHES_QUEUE
from app.application.outbox import OutboxSweeper
from app.application.ports import BusMessage
from app.application.runner import LocalSagaRunner
from app.application.services import StatsService
from storage.memory import InMemoryPayloadArchive, InMemoryPlayerStore, InMemorySagaLog
from storage.memory_bus import InMemoryMessageBus
from tests.support.matches import random_match

T0 = datetime.now(UTC) + timedelta(hours=1)  # after every generated match


class DownBus(InMemoryMessageBus):
    """A bus that refuses publishes while ``down``."""

    down = True

    async def publish(self, queue: str, message: BusMessage) -> None:
        if self.down:
            raise ConnectionError("bus unreachable")
        await super().publish(queue, message)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def service(bus: InMemoryMessageBus, clock: Clock) -> tuple[StatsService, InMemorySagaLog]:
    sagas, store = InMemorySagaLog(), InMemoryPlayerStore()
    svc = StatsService(sagas, InMemoryPayloadArchive(), store, PlayerGrainHost(store), bus, clock)
    return svc, sagas


def a_match(seed: int) -> dict:
    return random_match(random.Random(seed), f"m{seed}", [f"p{i}" for i in range(4)], size=2)


async def test_a_post_is_accepted_while_the_bus_is_down_and_swept_once_it_is_back() -> None:
    bus, clock = DownBus(), Clock()
    svc, sagas = service(bus, clock)
    submitted = await svc.submit_match(a_match(1))
    assert submitted.created and submitted.state == "accepted"
    sweeper = OutboxSweeper(sagas, bus, grace_s=30.0, clock=clock)

    clock.now = T0 + timedelta(seconds=60)
    with pytest.raises(ConnectionError):  # still down: the pass fails, nothing is lost
        await sweeper.sweep()
    assert await sagas.unpublished(clock.now, 10) == ["m1"]
    bus.down = False
    assert await sweeper.sweep() == 1
    assert bus.depth(MATCHES_QUEUE) == 1
    assert (await sagas.load("m1")).summary.published
    assert await sweeper.sweep() == 0


async def test_the_sweeper_leaves_recent_matches_to_their_post() -> None:
    bus, clock = DownBus(), Clock()
    svc, sagas = service(bus, clock)
    await svc.submit_match(a_match(2))
    bus.down = False
    sweeper = OutboxSweeper(sagas, bus, grace_s=30.0, clock=clock)
    clock.now = T0 + timedelta(seconds=10)
    assert await sweeper.sweep() == 0
    clock.now = T0 + timedelta(seconds=31)
    assert await sweeper.sweep() == 1


async def test_a_started_saga_leaves_nothing_to_sweep() -> None:
    bus, clock = DownBus(), Clock()
    bus.down = False
    svc, sagas = service(bus, clock)
    await svc.submit_match(a_match(3))
    runner = LocalSagaRunner(sagas, svc.archive, svc.grains)
    assert (await runner.handle(StartSaga("m3"))).state == "completed"
    clock.now = T0 + timedelta(hours=1)
    assert await OutboxSweeper(sagas, bus, grace_s=0.0, clock=clock).sweep() == 0
    assert bus.depth(MATCHES_QUEUE) == 1


async def test_a_match_not_started_after_the_grace_is_published_again_once() -> None:
    # The API does not record its publish: a match still queued (a backlog, a stopped
    # worker) looks unpublished, and the repeat is dropped by the queue's duplicate
    # detection; the sweeper records it, so it is not repeated every pass.
    bus, clock = DownBus(), Clock()
    bus.down = False
    svc, sagas = service(bus, clock)
    await svc.submit_match(a_match(4))
    sweeper = OutboxSweeper(sagas, bus, grace_s=30.0, clock=clock)
    clock.now = T0 + timedelta(seconds=60)
    assert await sweeper.sweep() == 1
    assert await sweeper.sweep() == 0
    assert bus.depth(MATCHES_QUEUE) == 1
