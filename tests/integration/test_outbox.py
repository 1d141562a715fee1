"""The outbox: a crash between storing a match and publishing it still ends with the
match completed exactly once, and the sweeper's repeat of a publish that did happen (the
API does not record it) is dropped by the queue. Real Azurite, real local Service Bus
broker, the worker and coordinator in this process."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from actors.grains import PlayerGrainHost
from app.application.messages import MATCHES_QUEUE
from app.application.outbox import OutboxSweeper
from app.application.ports import BusMessage, MessageBus
from app.application.runner import LocalSagaRunner
from app.application.sagas import utc_now
from app.application.services import StatsService
from app.application.worker import Worker
from app.domain.stats import public_record
from devstack.processes import Azurite
from storage.servicebus_bus import ServiceBusMessageBus
from storage.tables import TableStorage, open_table_storage
from tests.conftest import BrokerFactory
from tests.support.matches import expected_totals, mismatches, random_match
from tests.support.servicebus import project_queues

pytestmark = [pytest.mark.azurite, pytest.mark.broker, pytest.mark.timeout(180)]


@dataclass
class CrashBeforePublish:
    """The bus as seen by an API process that dies right after storing: publishes of the
    chosen match ids never happen."""

    inner: MessageBus
    lost: set[str] = field(default_factory=set)

    async def publish(self, queue: str, message: BusMessage) -> None:
        if message.message_id in self.lost:
            raise ConnectionError("process died before publishing")
        await self.inner.publish(queue, message)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.fixture
async def storage(azurite: Azurite, unique: str) -> AsyncIterator[TableStorage]:
    opened = await open_table_storage(azurite.connection_string, f"o{unique}")
    yield opened
    await opened.close()


@pytest.fixture
async def bus(broker_factory: BrokerFactory) -> AsyncIterator[ServiceBusMessageBus]:
    instance = broker_factory(project_queues(lock_s=5), name="outbox")
    opened = ServiceBusMessageBus(instance.connection_string)
    yield opened
    await opened.close()


async def test_a_crash_between_store_and_publish_still_completes_each_match_once(
    storage: TableStorage, bus: ServiceBusMessageBus
) -> None:
    rng = random.Random(11)
    run = uuid.uuid4().hex[:6]
    population = [f"p{run}-{i}" for i in range(6)]
    posted = [random_match(rng, f"m{run}-{i}", population, size=4) for i in range(3)]
    never_published, *normal = (m["match_id"] for m in posted)

    grains = PlayerGrainHost(storage.players)
    api_bus = CrashBeforePublish(bus, {never_published})
    api = StatsService(storage.sagas, storage.archive, storage.players, grains, api_bus)  # type: ignore[arg-type]
    for match in posted:
        submitted = await api.submit_match(match)
        assert submitted.created  # accepted: stored, whatever happened to the publish

    # None has started (no worker yet): the sweeper cannot tell the lost publish from
    # the two that are queued, and publishes all three once.
    later = utc_now() + timedelta(seconds=1)
    assert sorted(await storage.sagas.unpublished(later, 100)) == sorted([never_published, *normal])
    sweeper = OutboxSweeper(storage.sagas, bus, grace_s=0.0)
    assert await sweeper.sweep() == 3
    assert await storage.sagas.unpublished(later, 100) == []
    assert await sweeper.sweep() == 0

    runner = LocalSagaRunner(storage.sagas, storage.archive, grains)
    worker = Worker(bus, runner, concurrency=4, receive_wait_s=0.5)
    task = asyncio.create_task(worker.run())
    try:
        ids = [m["match_id"] for m in posted]
        for _ in range(120):
            states = {m: (await storage.sagas.load(m)).saga.state.value for m in ids}
            if set(states.values()) == {"completed"}:
                break
            await asyncio.sleep(0.25)
        assert states == dict.fromkeys(ids, "completed")
        await asyncio.sleep(1.0)  # a duplicate saga message would be picked up by now
    finally:
        worker.stop()
        await task

    # Two matches went out twice; the queue dropped the repeats.
    assert worker.counters.completed == 3
    assert worker.counters.dead_lettered == 0
    assert await bus.receive(MATCHES_QUEUE, 10, 0.5) == []
    for player_id, totals in expected_totals(posted).items():
        served = public_record(await grains.service_record(player_id))
        assert mismatches(served, totals) == [], player_id
    for match_id in ids:
        log = await storage.sagas.log(match_id)
        assert [e.event.__class__.__name__ for e in log].count("SagaStarted") == 1
