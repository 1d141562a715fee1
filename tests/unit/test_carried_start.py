"""The saga start that carries the match: the API stores no deltas and sends the record it
created and the payload with the message; on the message's first delivery the Game actor
aggregates the match itself and reads nothing. Over in-memory adapters."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actors.grains import GrainSettings, PlayerGrainHost
from app.application.commands import StartSaga, VoidMatch
from app.application.messages import (
    CARRY_LIMIT_BYTES,
    COMPLETED,
    MATCHES_QUEUE,
    carried_start,
    match_completed,
)
from app.application.ports import BusMessage, CarriedStart, ReceivedMessage, SagaRecord
from app.application.runner import LocalSagaRunner
from app.application.services import StatsService
from app.application.worker import Worker
from app.domain.aggregation import aggregate
from app.domain.retry import RetryPolicy
from app.domain.saga import Saga
from app.domain.stats import public_record
from app.domain.validation import parse_match
from storage.memory import InMemoryPayloadArchive, InMemoryPlayerStore, InMemorySagaLog
from storage.memory_bus import InMemoryMessageBus, check_limits
from storage.summary_entities import new_summary
from tests.support.faults import FlakyPlayerStore
from tests.support.matches import expected_totals, mismatches, one_sided, random_match

FAST = RetryPolicy(base_s=0.05, cap_s=0.2, max_attempts=4)
READS = ("load", "load_with_deltas", "deltas", "log")


class CountingSagaLog(InMemorySagaLog):
    """Counts the reads of the saga log by its callers (and the saves)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self._saving = False

    def reads(self) -> int:
        return sum(self.calls[name] for name in READS)

    async def load(self, match_id: str):  # type: ignore[no-untyped-def]
        # The in-memory save loads to check the etag: a table's If-Match reads nothing.
        self.calls["load"] += not self._saving
        return await super().load(match_id)

    async def load_with_deltas(self, match_id: str):  # type: ignore[no-untyped-def]
        self.calls["load_with_deltas"] += 1
        # Not through the counted ``load``/``deltas``: one read, as the table adapter's.
        return await InMemorySagaLog.load(self, match_id), await InMemorySagaLog.deltas(
            self, match_id
        )

    async def deltas(self, match_id: str):  # type: ignore[no-untyped-def]
        self.calls["deltas"] += 1
        return await super().deltas(match_id)

    async def log(self, match_id: str):  # type: ignore[no-untyped-def]
        self.calls["log"] += 1
        return await super().log(match_id)

    async def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls["save"] += 1
        self._saving = True
        try:
            return await super().save(*args, **kwargs)
        finally:
            self._saving = False


class CountingArchive(InMemoryPayloadArchive):
    """Counts the payload reads."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    async def get(self, match_id: str, payload_hash: str) -> dict[str, Any]:
        self.gets += 1
        return await super().get(match_id, payload_hash)


@dataclass
class Stack:
    service: StatsService
    runner: LocalSagaRunner
    worker: Worker
    bus: InMemoryMessageBus
    sagas: CountingSagaLog
    archive: CountingArchive
    grains: PlayerGrainHost


def stack(**faults: Any) -> Stack:
    store = FlakyPlayerStore(InMemoryPlayerStore(), **faults)
    sagas, archive, bus = CountingSagaLog(), CountingArchive(), InMemoryMessageBus()
    grains = PlayerGrainHost(store, GrainSettings(storage_attempts=2, storage_backoff_s=0.001))
    runner = LocalSagaRunner(sagas, archive, grains, FAST)
    service = StatsService(sagas, archive, store, grains, bus)
    worker = Worker(bus, runner, concurrency=4, receive_wait_s=0.1)
    return Stack(service, runner, worker, bus, sagas, archive, grains)


def a_match(players: int = 6, seed: int = 1) -> dict[str, Any]:
    """A match of one team: unrated, so that its start is logged with its first round,
    which is what this file tests (a rated start logs first: ``test_rated_sagas.py``)."""
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    population = [f"p{run}-{i}" for i in range(players)]
    return one_sided(random_match(rng, f"m{run}", population, size=players))


def big_match() -> dict[str, Any]:
    """A valid match whose payload is past the carry bound (raw telemetry)."""
    run = uuid.uuid4().hex[:6]
    ended = datetime.now(UTC) - timedelta(hours=1)
    players = [f"p{run}-{i}" for i in range(2)]
    events = [
        {
            "t": i * 0.5,
            "type": "kill",
            "killer": players[i % 2],
            "victim": players[1 - i % 2],
            "weapon": "battle_rifle",
            "headshot": i % 3 == 0,
        }
        for i in range(3_000)
    ]
    lines = [
        {"player_id": p, "team": "red", "outcome": "tie", "kills": 1_500, "time_played_s": 1_600}
        for p in players
    ]
    return {
        "match_id": f"m{run}",
        "mode": "slayer",
        "map": "haven",
        "started_at": (ended - timedelta(seconds=1_800)).isoformat().replace("+00:00", "Z"),
        "ended_at": ended.isoformat().replace("+00:00", "Z"),
        "players": lines,
        "events": events,
    }


async def take(s: Stack) -> ReceivedMessage:
    [received] = await s.bus.receive(MATCHES_QUEUE, 1, 1.0)
    return received


async def records(s: Stack, posted: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for line in posted["players"]:
        served = public_record(await s.grains.service_record(line["player_id"]))
        out[line["player_id"]] = served
    return out


def log_names(entries: list[Any]) -> list[str]:
    return [type(e.event).__name__ for e in entries]


# ---- the message -------------------------------------------------------------------------


async def test_the_message_carries_the_created_record_exactly() -> None:
    s = stack()
    posted = a_match()
    await s.service.submit_match(posted)
    received = await take(s)
    # Through JSON, as the bus carries it.
    body = json.loads(json.dumps(dict(received.message.body)))
    start = carried_start(body)
    assert start is not None
    assert start.record == await InMemorySagaLog.load(s.sagas, posted["match_id"])
    match = parse_match(posted, now=None)
    assert start.payload == match.canonical_json()
    assert received.message.message_id == match_completed(posted["match_id"]).message_id


def test_a_bare_or_malformed_start_carries_nothing(caplog: pytest.LogCaptureFixture) -> None:
    assert carried_start({"match_id": "m1"}) is None
    assert carried_start({"match_id": "m1", "start": {"etag": "x"}}) is None
    assert "malformed start" in caplog.text


async def test_a_payload_past_the_bound_goes_as_a_claim_check() -> None:
    s = stack()
    posted = big_match()
    match = parse_match(posted, now=None)
    assert len(match.canonical_json()) > CARRY_LIMIT_BYTES
    await s.service.submit_match(posted)
    received = await take(s)
    check_limits(received.message)  # what Service Bus would take
    assert "start" in received.message.body and "payload" not in received.message.body
    await s.worker.handle(MATCHES_QUEUE, received)
    # The blob is read (the claim check), the saga log is not.
    assert (s.archive.gets, s.sagas.reads()) == (1, 0)
    assert (await s.sagas.load(match.match_id)).saga.state.value == "completed"
    assert await s.sagas.deltas(match.match_id) == aggregate(match)


def test_a_payload_under_the_bound_is_carried() -> None:
    match = parse_match(a_match(), now=None)
    created = SagaRecord(new_summary(match, datetime.now(UTC)), Saga(match.match_id), 0, "e1")

    def body(payload: str | None) -> Mapping[str, Any]:
        return match_completed(match.match_id, CarriedStart(created, payload)).body

    bare = json.dumps(body(None), separators=(",", ":"))
    room = CARRY_LIMIT_BYTES - len(bare) - len(',"payload":""')
    assert body("x" * (room - 1))["payload"] == "x" * (room - 1)
    assert "payload" not in body("x" * room) and body("x" * room)["start"] == body(None)["start"]


# ---- the coordinator ---------------------------------------------------------------------


async def test_a_first_delivery_reads_nothing_and_ends_as_a_loaded_start() -> None:
    posted = a_match(players=8, seed=2)
    mid = posted["match_id"]
    carried, loaded = stack(), stack()
    for s in (carried, loaded):
        await s.service.submit_match(posted)
    received = await take(carried)
    assert received.delivery_count == 0 and "payload" in received.message.body
    await carried.worker.handle(MATCHES_QUEUE, received)
    assert carried.sagas.reads() == 0 and carried.archive.gets == 0
    assert carried.sagas.calls["save"] == 1  # start, first round, completion and deltas

    # The same match started from a bare message (as the outbox sweeper sends it).
    await take(loaded)  # the API's message, dropped
    # Under another id: the queue drops a repeat of the API's.
    await loaded.bus.publish(MATCHES_QUEUE, BusMessage("again", {"match_id": mid}, COMPLETED))
    await loaded.worker.handle(MATCHES_QUEUE, await take(loaded))
    assert loaded.sagas.calls["load_with_deltas"] == 1 and loaded.archive.gets == 1

    one, other = await carried.sagas.load(mid), await loaded.sagas.load(mid)
    assert one.saga == other.saga and one.seq == other.seq and one.saga.state.value == "completed"
    assert one.summary.published and other.summary.published
    assert (
        await carried.sagas.deltas(mid)
        == await loaded.sagas.deltas(mid)
        == aggregate(parse_match(posted, now=None))
    )
    assert log_names(await carried.sagas.log(mid)) == log_names(await loaded.sagas.log(mid))
    assert await records(carried, posted) == await records(loaded, posted)
    for pid, totals in expected_totals([posted]).items():
        assert mismatches((await records(carried, posted))[pid], totals) == []


async def _started(s: Stack, mid: str) -> None:
    """Another coordinator started the saga: one player waits for a retry."""
    assert (await s.runner.handle(StartSaga(mid))).state == "recovering"


async def _finished(s: Stack, mid: str) -> None:
    assert (await s.runner.handle(StartSaga(mid))).state == "completed"


async def _published(s: Stack, mid: str) -> None:
    """The outbox sweeper flagged it: still accepted, under another etag."""
    await s.sagas.mark_published(mid)


@pytest.mark.parametrize("moved_on", [_published, _started, _finished])
async def test_a_stale_carried_record_ends_right_with_each_player_applied_once(
    moved_on: Any,
) -> None:
    posted = a_match(players=5, seed=3)
    victim = posted["players"][0]["player_id"]
    # With one outage the victim fails the other coordinator's round (the grain retries
    # once in process) and succeeds in the carried one.
    s = stack(transient={victim: 2} if moved_on is _started else {})
    mid = posted["match_id"]
    await s.service.submit_match(posted)
    received = await take(s)
    await moved_on(s, mid)
    stale = carried_start(received.message.body)
    assert stale is not None and stale.record.etag != (await s.sagas.load(mid)).etag
    await s.worker.handle(MATCHES_QUEUE, received)
    assert s.worker.counters.completed == 1
    record = await s.sagas.load(mid)
    assert record.saga.state.value == "completed"
    names = log_names(await s.sagas.log(mid))
    assert names.count("SagaStarted") == 1 and names.count("SagaCompleted") == 1
    applied = Counter(
        e.event.player_id
        for e in await s.sagas.log(mid)
        if type(e.event).__name__ == "PlayerApplied"
    )
    assert applied == {line["player_id"]: 1 for line in posted["players"]}
    for pid, totals in expected_totals([posted]).items():
        assert mismatches((await records(s, posted))[pid], totals) == [], pid


async def test_a_redelivery_reads_the_log_not_what_the_message_carries() -> None:
    posted = a_match(players=4, seed=4)
    s = stack()
    await s.service.submit_match(posted)
    first = await take(s)
    await s.bus.abandon(first)  # as a worker that failed before the saga's first save
    again = await take(s)
    assert again.delivery_count == 1 and carried_start(again.message.body) is not None
    await s.worker.handle(MATCHES_QUEUE, again)
    assert s.sagas.calls["load_with_deltas"] == 1 and s.archive.gets == 1
    assert (await s.sagas.load(posted["match_id"])).saga.state.value == "completed"


async def test_a_carried_payload_that_is_not_the_stored_one_is_not_trusted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    posted = a_match(players=3, seed=5)
    s = stack()
    await s.service.submit_match(posted)
    received = await take(s)
    forged = dict(received.message.body)
    payload = json.loads(forged["payload"])
    payload["players"][0]["kills"] += 1
    forged["payload"] = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    start = carried_start(forged)
    assert (await s.runner.handle(StartSaga(posted["match_id"], start))).state == "completed"
    assert s.archive.gets == 1 and "not the stored one" in caplog.text
    assert await s.sagas.deltas(posted["match_id"]) == aggregate(parse_match(posted, now=None))


async def test_a_match_voided_before_its_start_logs_its_deltas_and_counts_for_nobody() -> None:
    voided, other = a_match(players=4, seed=6), a_match(players=4, seed=7)
    s = stack()
    for m in (voided, other):
        await s.service.submit_match(m)
    mid = voided["match_id"]
    assert (await s.runner.handle(VoidMatch(mid, "cheating"))).state == "compensated"
    assert await s.sagas.deltas(mid) == aggregate(parse_match(voided, now=None))
    # Its start message arrives afterwards, carrying the record as created.
    for _ in range(2):
        await s.worker.handle(MATCHES_QUEUE, await take(s))
    assert (await s.sagas.load(mid)).saga.state.value == "compensated"
    assert (await s.sagas.load(other["match_id"])).saga.state.value == "completed"
    names = log_names(await s.sagas.log(mid))
    assert "SagaStarted" not in names and names.count("SagaCompensated") == 1
    for line in voided["players"]:
        served = public_record(await s.grains.service_record(line["player_id"]))
        assert served["matches"] == 0, line["player_id"]


async def test_concurrent_first_deliveries_of_one_start_count_once() -> None:
    # Copies of one start message under other ids (the queue lets them through): each
    # coordinator takes the saga on from the same carried record; one save wins the lease.
    posted = a_match(players=8, seed=8)
    s = stack(delay_s=0.01)
    await s.service.submit_match(posted)
    start = carried_start((await take(s)).message.body)
    mid = posted["match_id"]
    replies = await asyncio.gather(*(s.runner.handle(StartSaga(mid, start)) for _ in range(4)))
    assert {r.state for r in replies} == {"completed"}
    assert s.sagas.calls["load_with_deltas"] == 0 and s.archive.gets == 0
    names = log_names(await s.sagas.log(mid))
    assert names.count("SagaStarted") == 1 and names.count("SagaCompleted") == 1
    assert names.count("PlayerApplied") == len(posted["players"])
    for pid, totals in expected_totals([posted]).items():
        assert mismatches((await records(s, posted))[pid], totals) == [], pid
