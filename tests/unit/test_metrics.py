"""The worker's metrics: what a worker over in-memory adapters counts for real messages,
sagas, retries and dead letters."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

from actors.grains import GrainSettings, PlayerGrainHost
from app.application.messages import MATCHES_QUEUE, PLAYER_UPDATES_QUEUE
from app.application.ports import BusMessage
from app.application.runner import LocalSagaRunner
from app.application.services import StatsService
from app.application.worker import Worker
from app.domain.retry import RetryPolicy
from app.domain.saga import SagaState
from app.observability.metrics import Metrics
from storage.memory import InMemoryPayloadArchive, InMemoryPlayerStore, InMemorySagaLog
from storage.memory_bus import InMemoryMessageBus
from tests.support.faults import FlakyPlayerStore
from tests.support.matches import random_match

FAST = RetryPolicy(base_s=0.05, cap_s=0.2, max_attempts=4)


class Stack:
    def __init__(self, **faults: Any) -> None:
        self.store = FlakyPlayerStore(InMemoryPlayerStore(), **faults)
        self.sagas, self.bus = InMemorySagaLog(), InMemoryMessageBus()
        archive = InMemoryPayloadArchive()
        grains = PlayerGrainHost(
            self.store, GrainSettings(storage_attempts=2, storage_backoff_s=0.001)
        )
        self.runner = LocalSagaRunner(self.sagas, archive, grains, FAST)
        self.service = StatsService(self.sagas, archive, self.store, grains, self.bus)
        self.metrics = Metrics(api=False)
        self.worker = Worker(
            self.bus, self.runner, concurrency=8, receive_wait_s=0.1, observer=self.metrics.worker
        )

    def value(self, name: str, **labels: str) -> float:
        found = self.metrics.registry.get_sample_value(name, labels)
        assert found is not None, (name, labels)
        return found


def matches(n: int, players: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    population = [f"p{run}-{i}" for i in range(players)]
    return [
        random_match(rng, f"m{run}-{i}", population, size=rng.randint(1, players)) for i in range(n)
    ]


async def test_the_worker_counts_messages_sagas_retries_and_dead_letters() -> None:
    posted = matches(3, players=6, seed=2)
    victims = {line["player_id"] for line in posted[0]["players"]}
    # More failures than the in-process attempts cover: durable retries through the bus.
    s = Stack(transient={p: 3 for p in victims})
    for m in posted:
        await s.service.submit_match(m)
    await s.bus.publish(MATCHES_QUEUE, BusMessage("bogus", {"match_id": "never-stored"}))
    ids = [m["match_id"] for m in posted]
    running = asyncio.create_task(s.worker.run())
    try:
        for _ in range(400):  # 20 s at most
            if {(await s.sagas.load(m)).saga.state for m in ids} == {SagaState.COMPLETED}:
                break
            await asyncio.sleep(0.05)
    finally:
        s.worker.stop()  # returns once the messages in flight are settled
        await running
    assert {(await s.sagas.load(m)).saga.state for m in ids} == {SagaState.COMPLETED}
    logs = [await s.sagas.log(m) for m in ids]
    scheduled = sum(type(e.event).__name__ == "RetryScheduled" for log in logs for e in log)
    assert scheduled > 0
    assert s.value("statsaga_player_retries_total") == scheduled
    assert s.value("statsaga_messages_handled_total", queue=MATCHES_QUEUE, outcome="completed") == 3
    handled_retries = s.value(
        "statsaga_messages_handled_total", queue=PLAYER_UPDATES_QUEUE, outcome="completed"
    )
    assert handled_retries == scheduled
    assert s.value("statsaga_sagas_finished_total", state="completed") == 3
    assert s.value("statsaga_saga_duration_seconds_count", state="completed") == 3
    assert s.value("statsaga_time_to_consistency_seconds_count", state="completed") == 3
    assert s.value("statsaga_sagas_finished_total", state="compensated") == 0
    dead = s.value(
        "statsaga_dead_letters_total", queue=MATCHES_QUEUE, reason="UnprocessableMessage"
    )
    assert dead == 1
    assert (
        s.value("statsaga_messages_handled_total", queue=MATCHES_QUEUE, outcome="dead_lettered")
        == 1
    )
    assert s.value("statsaga_messages_handled_total", queue=MATCHES_QUEUE, outcome="abandoned") == 0
    # The worker role's registry has no request metrics: those are the api's.
    assert s.metrics.registry.get_sample_value("statsaga_http_requests_total") is None
