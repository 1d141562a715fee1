"""The saga coordinator and the worker over in-memory adapters and in-process grains."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from actors.grains import GrainSettings, PlayerGrainHost
from app.application.commands import StartSaga, VoidMatch
from app.application.messages import MATCHES_QUEUE, PLAYER_UPDATES_QUEUE
from app.application.ports import PlayerUpdate, ReceivedMessage, UpdateResult
from app.application.runner import LocalSagaRunner
from app.application.sagas import utc_now
from app.application.services import StatsService
from app.application.worker import Worker
from app.domain.aggregation import aggregate
from app.domain.errors import ConcurrencyConflict, StorageUnavailable
from app.domain.retry import RetryPolicy
from app.domain.saga import Action
from app.domain.stats import public_record
from app.domain.validation import parse_match
from storage.memory import InMemoryPayloadArchive, InMemoryPlayerStore, InMemorySagaLog
from storage.memory_bus import InMemoryMessageBus
from tests.support.faults import FlakyPlayerStore
from tests.support.matches import expected_totals, mismatches, one_sided, random_match

FAST = RetryPolicy(base_s=0.05, cap_s=0.2, max_attempts=4)


@dataclass
class Stack:
    service: StatsService
    runner: LocalSagaRunner
    worker: Worker
    bus: InMemoryMessageBus
    store: FlakyPlayerStore
    sagas: InMemorySagaLog


def stack(policy: RetryPolicy = FAST, **faults: object) -> Stack:
    return stack_over(FlakyPlayerStore(InMemoryPlayerStore(), **faults), policy)  # type: ignore[arg-type]


def stack_over(
    store: FlakyPlayerStore, policy: RetryPolicy = FAST, blind_insert: bool = True
) -> Stack:
    """The in-memory stack over ``store`` (``blind_insert``: the grains' setting, which
    also lets them guess a cold player's rating without reading it)."""
    sagas, archive, bus = InMemorySagaLog(), InMemoryPayloadArchive(), InMemoryMessageBus()
    settings = GrainSettings(storage_attempts=2, storage_backoff_s=0.001, blind_insert=blind_insert)
    grains = PlayerGrainHost(store, settings)
    runner = LocalSagaRunner(sagas, archive, grains, policy)
    service = StatsService(sagas, archive, store, grains, bus)
    return Stack(
        service, runner, Worker(bus, runner, concurrency=8, receive_wait_s=0.1), bus, store, sagas
    )


async def drain(
    s: Stack, match_ids: list[str], timeout_s: float = 10.0, until: dict[str, str] | None = None
) -> dict[str, str]:
    """Run a worker (a fresh one, on ``s.bus``) until every saga is terminal, or in the
    states of ``until``, or the time is up; returns the states."""
    s.worker = Worker(s.bus, s.runner, concurrency=8, receive_wait_s=0.1)
    task = asyncio.create_task(s.worker.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    states: dict[str, str] = {}
    try:
        while loop.time() < deadline:
            states = {m: (await s.sagas.load(m)).saga.state.value for m in match_ids}
            if until is not None and states == until:
                break
            if until is None and set(states.values()) <= {"completed", "stuck", "compensated"}:
                break
            await asyncio.sleep(0.05)
    finally:
        s.worker.stop()
        await task
    return states


def matches(n: int, players: int = 12, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    population = [f"p{run}-{i}" for i in range(players)]
    return [
        random_match(rng, f"m{run}-{i}", population, size=rng.randint(1, min(8, players)))
        for i in range(n)
    ]


async def assert_exact(s: Stack, posted: list[dict]) -> None:
    for pid, totals in expected_totals(posted).items():
        served = public_record(await s.runner.grains.service_record(pid))
        assert mismatches(served, totals) == [], pid


async def test_matches_flow_through_the_bus_to_exact_records() -> None:
    s = stack()
    posted = matches(15)
    for m in posted:
        assert (await s.service.submit_match(m)).created
    states = await drain(s, [m["match_id"] for m in posted])
    assert set(states.values()) == {"completed"}
    await assert_exact(s, posted)
    assert s.bus.depth(MATCHES_QUEUE) == 0


async def test_transient_failures_retry_durably_then_complete_exactly() -> None:
    posted = matches(6, players=6, seed=2)
    victims = {line["player_id"] for line in posted[0]["players"]}
    # Each victim fails more often than the in-process retries cover, so the saga must
    # schedule durable retries through the bus.
    s = stack(transient={p: 3 for p in victims})
    for m in posted:
        await s.service.submit_match(m)
    states = await drain(s, [m["match_id"] for m in posted])
    assert set(states.values()) == {"completed"}
    await assert_exact(s, posted)
    log = [type(e.event).__name__ for e in await s.sagas.log(posted[0]["match_id"])]
    assert "RetryScheduled" in log and log[-1] == "SagaCompleted"


async def test_permanent_failure_dead_letters_and_leaves_the_saga_stuck() -> None:
    posted = matches(1, players=3, seed=4)
    broken = posted[0]["players"][0]["player_id"]
    s = stack(permanent={broken})
    await s.service.submit_match(posted[0])
    states = await drain(s, [posted[0]["match_id"]])
    assert states == {posted[0]["match_id"]: "stuck"}
    record = await s.sagas.load(posted[0]["match_id"])
    assert record.saga.players[broken].status.value == "dead"
    others = [p for p in record.saga.players if p != broken]
    assert all(record.saga.players[p].status.value == "applied" for p in others)
    dead = await s.bus.receive(f"{PLAYER_UPDATES_QUEUE}/$deadletterqueue", 10, 1.0)
    assert [d.message.body["player_id"] for d in dead] == [broken]
    assert dead[0].message.body["DeadLetterReason"] == "PlayerStepFailed"


async def test_exhausted_retries_dead_letter_with_the_attempt_count() -> None:
    posted = matches(1, players=2, seed=5)
    victim = posted[0]["players"][0]["player_id"]
    s = stack(transient={victim: 10_000})
    await s.service.submit_match(posted[0])
    states = await drain(s, [posted[0]["match_id"]])
    assert states == {posted[0]["match_id"]: "stuck"}
    progress = (await s.sagas.load(posted[0]["match_id"])).saga.players[victim]
    assert progress.attempts == FAST.max_attempts


async def test_concurrent_duplicate_runs_count_once() -> None:
    posted = matches(1, players=8, seed=6)
    s = stack(delay_s=0.01)
    await s.service.submit_match(posted[0])
    mid = posted[0]["match_id"]
    replies = await asyncio.gather(*(s.runner.handle(StartSaga(mid)) for _ in range(4)))
    assert {r.state for r in replies} == {"completed"}
    await assert_exact(s, posted)
    log = [type(e.event).__name__ for e in await s.sagas.log(mid)]
    assert log.count("SagaStarted") == 1 and log.count("SagaCompleted") == 1


async def test_invalid_bus_message_is_dead_lettered_not_retried() -> None:
    s = stack()
    from app.application.ports import BusMessage

    await s.bus.publish(MATCHES_QUEUE, BusMessage("x", {"match_id": "never-stored"}))
    task = asyncio.create_task(s.worker.run())
    await asyncio.sleep(0.5)
    s.worker.stop()
    await task
    dead = await s.bus.receive(f"{MATCHES_QUEUE}/$deadletterqueue", 10, 1.0)
    assert [d.message.body["DeadLetterReason"] for d in dead] == ["UnprocessableMessage"]


@pytest.mark.parametrize("invalidate_after", [True])
async def test_invalidate_reverts_every_player(invalidate_after: bool) -> None:
    posted = matches(3, players=4, seed=8)
    s = stack()
    for m in posted:
        await s.service.submit_match(m)
    await drain(s, [m["match_id"] for m in posted])
    reply = await s.runner.handle(VoidMatch(posted[0]["match_id"], "cheating"))
    assert reply.state == "compensated"
    await assert_exact(s, posted[1:] if invalidate_after else posted)


class SettleFailsBus(InMemoryMessageBus):
    """Its first completion fails, as when the SDK shut a receiver down under it."""

    failures = 1

    async def complete(self, received: ReceivedMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise ValueError("Failed to complete the message as the handler has been shutdown")
        await super().complete(received)


async def test_a_failed_settlement_is_not_taken_for_a_bad_message() -> None:
    posted = matches(1, players=4, seed=9)
    s = stack()
    s.bus = s.service.bus = SettleFailsBus(lock_duration_s=0.3)
    mid = posted[0]["match_id"]
    await s.service.submit_match(posted[0])
    assert await drain(s, [mid], timeout_s=3.0, until={mid: "never"}) == {mid: "completed"}
    assert s.worker.counters.settle_failures == 1
    # Not dead-lettered as "unprocessable": it came back when its lock expired, and the
    # repeat found the saga completed.
    assert await s.bus.peek(f"{MATCHES_QUEUE}/$deadletterqueue", 10) == []
    assert s.worker.counters.completed == 1 and s.bus.depth(MATCHES_QUEUE) == 0
    await assert_exact(s, posted)


class ForgetfulSagaLog(InMemorySagaLog):
    """Fails the first save that logs the second attempt's RetryScheduled (so, while a
    retry message is handled): the coordinator dies between deciding the retry (logged)
    and sending it."""

    failed = False

    async def save(self, record, saga, events, at, deltas=None, began_at=None):  # type: ignore[no-untyped-def]
        if not self.failed and any(getattr(e, "attempt", 0) == 2 for e in events):
            self.failed = True
            raise StorageUnavailable("injected: saved the decision, lost the send")
        return await super().save(record, saga, events, at, deltas, began_at)


async def test_a_retry_decided_but_never_sent_is_sent_by_the_redelivered_message() -> None:
    posted = matches(1, players=4, seed=10)
    victim = posted[0]["players"][0]["player_id"]
    s = stack(transient={victim: 5})  # two durable retries needed
    forgetful = ForgetfulSagaLog()
    s.sagas = s.service.sagas = s.runner.sagas = forgetful
    mid = posted[0]["match_id"]
    await s.service.submit_match(posted[0])
    assert await drain(s, [mid]) == {mid: "completed"}
    assert forgetful.failed
    await assert_exact(s, posted)


async def test_a_start_is_logged_with_the_first_round_in_one_save() -> None:
    posted = [one_sided(m) for m in matches(1, players=6, seed=11)]  # unrated
    s = stack()
    mid = posted[0]["match_id"]
    await s.service.submit_match(posted[0])
    assert await drain(s, [mid]) == {mid: "completed"}
    entries = await s.sagas.log(mid)
    names = [type(e.event).__name__ for e in entries]
    players = len(posted[0]["players"])
    assert names == ["SagaStarted"] + ["PlayerApplied"] * players + ["SagaCompleted"]
    assert len({e.at for e in entries}) == 1  # one save
    summary = (await s.sagas.load(mid)).summary
    assert summary.published  # delivered: the API's publish is not recorded
    assert summary.began_at is not None and summary.finished_at is not None
    assert summary.accepted_at <= summary.began_at < summary.finished_at


class FirstSaveFails(InMemorySagaLog):
    """Fails the save that logs a saga's start (with its first round): the coordinator
    dies after the players were updated, before anything about them is logged."""

    failed = False

    async def save(self, record, saga, events, at, deltas=None, began_at=None):  # type: ignore[no-untyped-def]
        if not self.failed and any(type(e).__name__ == "SagaStarted" for e in events):
            self.failed = True
            raise StorageUnavailable("injected: the first round ran, its save was lost")
        return await super().save(record, saga, events, at, deltas, began_at)


async def test_a_first_round_whose_save_is_lost_runs_again_and_counts_once() -> None:
    posted = matches(2, players=5, seed=12)
    s = stack()
    s.sagas = s.service.sagas = s.runner.sagas = failing = FirstSaveFails()
    ids = [m["match_id"] for m in posted]
    for m in posted:
        await s.service.submit_match(m)
    assert await drain(s, ids) == {i: "completed" for i in ids}
    assert failing.failed
    await assert_exact(s, posted)
    for mid in ids:
        names = [type(e.event).__name__ for e in await s.sagas.log(mid)]
        assert names.count("SagaStarted") == 1 and names.count("SagaCompleted") == 1


async def test_a_match_stored_without_deltas_takes_them_from_its_payload() -> None:
    # As an API from before the deltas came with the summary stored it.
    posted = matches(1, players=6, seed=13)
    s = stack()
    match = parse_match(posted[0], now=None)
    await s.runner.archive.put(match)
    await s.sagas.create(match, utc_now(), {})
    assert (await s.runner.handle(StartSaga(match.match_id))).state == "completed"
    assert await s.sagas.deltas(match.match_id) == aggregate(match)
    await assert_exact(s, posted)


class VoidedMidFirstRound:
    """Grains that, once the first round of a saga has updated its players (and before
    the coordinator logs anything), let an operator's invalidation run to its end: the
    start is logged with the first round, so the invalidation finds the saga unstarted."""

    def __init__(self, grains: PlayerGrainHost, void: Callable[[], Awaitable[object]]) -> None:
        self.grains, self.void, self.voided = grains, void, False

    def __getattr__(self, name: str) -> object:
        return getattr(self.grains, name)

    async def update(self, updates: list[PlayerUpdate]) -> list[UpdateResult]:
        results = await self.grains.update(updates)
        if not self.voided and all(u.action is Action.APPLY for u in updates):
            self.voided = True
            await self.void()
        return results


async def test_a_match_voided_while_its_first_round_runs_unlogged_counts_for_nobody() -> None:
    posted = matches(2, players=6, seed=14)
    s = stack()
    mid = posted[0]["match_id"]
    grains = s.runner.grains
    s.runner.grains = VoidedMidFirstRound(
        grains, lambda: s.runner.handle(VoidMatch(mid, "cheating"))
    )  # type: ignore[assignment]
    for m in posted:
        await s.service.submit_match(m)
    assert (await s.runner.handle(StartSaga(mid))).state == "compensated"
    assert s.runner.grains.voided  # type: ignore[attr-defined]
    assert await drain(s, [m["match_id"] for m in posted]) == {
        mid: "compensated",
        posted[1]["match_id"]: "completed",
    }
    await assert_exact(s, posted[1:])
    record = await s.sagas.load(mid)
    assert set(record.saga.players) == {line["player_id"] for line in posted[0]["players"]}
    names = [type(e.event).__name__ for e in await s.sagas.log(mid)]
    assert names.count("SagaCompensated") == 1 and "SagaStarted" not in names


class AnswerLostOnFailure(InMemorySagaLog):
    """The save that logs a player's first failure is written, but its answer is lost and
    the SDK's retry of it meets its own write: the coordinator sees a lease conflict for a
    save that went through, and must still send the retry that failure commands."""

    lost = False

    async def save(self, record, saga, events, at, deltas=None, began_at=None):  # type: ignore[no-untyped-def]
        saved = await super().save(record, saga, events, at, deltas, began_at)
        if not self.lost and any(type(e).__name__ == "PlayerFailed" for e in events):
            self.lost = True
            raise ConcurrencyConflict("injected: written, and the retried request met it")
        return saved


async def test_a_save_written_but_answered_as_a_conflict_still_sends_its_retry() -> None:
    posted = matches(1, players=4, seed=14)
    victim = posted[0]["players"][0]["player_id"]
    s = stack(transient={victim: 2})  # the first round fails the victim once (two tries)
    s.sagas = s.service.sagas = s.runner.sagas = lossy = AnswerLostOnFailure()
    mid = posted[0]["match_id"]
    await s.service.submit_match(posted[0])
    # The reloaded saga already holds the failure: the fact, folded again, must not be
    # dropped with the retry it commands (or the saga waits for the stall sweeper).
    assert await drain(s, [mid], timeout_s=5.0) == {mid: "completed"}
    assert lossy.lost
    await assert_exact(s, posted)


class ScheduleAnswerLost(InMemorySagaLog):
    """The save that logs a RetryScheduled is written and its answer lost (the injected
    "response lost" storage fault): the command fails after the log says the retry is
    scheduled, and its outbox, which held that retry, is never sent."""

    lost = 0

    async def save(self, record, saga, events, at, deltas=None, began_at=None):  # type: ignore[no-untyped-def]
        saved = await super().save(record, saga, events, at, deltas, began_at)
        if self.lost < 2 and any(type(e).__name__ == "RetryScheduled" for e in events):
            self.lost += 1
            raise StorageUnavailable("injected: written, answer lost")
        return saved


async def test_a_retry_logged_as_scheduled_but_never_sent_is_sent_again() -> None:
    # Twice: once from the start (the redelivered match message must re-send it), once
    # from a retry (the redelivered retry message, stale by then, must re-send the next).
    posted = matches(1, players=4, seed=15)
    victim = posted[0]["players"][0]["player_id"]
    s = stack(transient={victim: 4})  # two tries per round: two durable retries needed
    s.sagas = s.service.sagas = s.runner.sagas = lossy = ScheduleAnswerLost()
    mid = posted[0]["match_id"]
    await s.service.submit_match(posted[0])
    # Without the re-send, the saga waits for the stall sweeper (minutes).
    assert await drain(s, [mid], timeout_s=5.0) == {mid: "completed"}
    assert lossy.lost == 2
    await assert_exact(s, posted)


async def test_a_dead_letter_lost_with_a_failed_commands_outbox_is_published_again() -> None:
    # One round kills one player and fails another: the dead letter and the retry go
    # into the outbox, then the save logging the retry's schedule loses its answer and
    # the command fails with both. The redelivered message publishes both again.
    posted = matches(1, players=4, seed=16)
    broken, flaky = (line["player_id"] for line in posted[0]["players"][:2])
    s = stack(permanent={broken}, transient={flaky: 2})
    s.sagas = s.service.sagas = s.runner.sagas = lossy = ScheduleAnswerLost()
    lossy.lost = 1  # only the first schedule's answer is lost
    mid = posted[0]["match_id"]
    await s.service.submit_match(posted[0])
    assert await drain(s, [mid], timeout_s=5.0) == {mid: "stuck"}
    assert lossy.lost == 2
    dead = await s.bus.receive(f"{PLAYER_UPDATES_QUEUE}/$deadletterqueue", 10, 1.0)
    assert [m.message.body["player_id"] for m in dead] == [broken]
