"""What a finishing save reports (``saga_finish``), and the coordinator's replies that
carry it to the worker (``SagaReply.finished``)."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from actors.grains import GrainSettings, PlayerGrainHost
from app.application.commands import StartSaga, VoidMatch
from app.application.ports import MatchSummary, SagaFinish, SagaRecord
from app.application.runner import LocalSagaRunner
from app.application.saga_steps import saga_finish
from app.application.services import StatsService
from app.domain.saga import Saga, SagaState
from storage.memory import InMemoryPayloadArchive, InMemoryPlayerStore, InMemorySagaLog
from storage.memory_bus import InMemoryMessageBus
from tests.support.matches import random_match

T0 = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


def record(state: SagaState, **times: datetime | None) -> SagaRecord:
    summary = MatchSummary(
        "m-1", "slayer", "haven", T0, T0, "hash", ("p-1",), accepted_at=T0, **times
    )
    return SagaRecord(summary, Saga("m-1", state), seq=1, etag="e")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# ---- what a finishing save reports -------------------------------------------------------


def test_the_save_that_completes_a_saga_reports_its_duration_and_time_to_consistency() -> None:
    before = record(SagaState.RUNNING, began_at=at(2), updated_at=at(3))
    saved = record(SagaState.COMPLETED, began_at=at(2), updated_at=at(5), finished_at=at(5))
    assert saga_finish(before, saved) == SagaFinish("completed", 3.0, 5.0)


def test_saves_that_do_not_finish_a_saga_report_nothing() -> None:
    running = record(SagaState.RUNNING, began_at=at(1), updated_at=at(2))
    recovering = replace(running, saga=Saga("m-1", SagaState.RECOVERING))
    stuck = replace(running, saga=Saga("m-1", SagaState.STUCK))
    done = record(SagaState.COMPLETED, began_at=at(1), updated_at=at(3), finished_at=at(3))
    reopened = replace(done, saga=Saga("m-1", SagaState.COMPENSATING))
    for before, saved in [(running, recovering), (recovering, stuck), (done, reopened)]:
        assert saga_finish(before, saved) is None


def test_a_compensation_reports_its_own_duration_and_no_second_time_to_consistency() -> None:
    # Completed at 5 s, voided at 100 s: the compensation took 3 s; consistency was
    # reached once, at the completion (as GET /v1/matches/{id} reports it).
    before = record(SagaState.COMPENSATING, began_at=at(100), updated_at=at(101), finished_at=at(5))
    saved = replace(
        before,
        saga=Saga("m-1", SagaState.COMPENSATED),
        summary=replace(before.summary, updated_at=at(103)),
    )
    assert saga_finish(before, saved) == SagaFinish("compensated", 3.0, None)


def test_a_stuck_saga_finished_by_a_redrive_counts_from_its_start() -> None:
    before = record(SagaState.STUCK, began_at=at(1), updated_at=at(60))
    saved = record(SagaState.COMPLETED, began_at=at(1), updated_at=at(600), finished_at=at(600))
    assert saga_finish(before, saved) == SagaFinish("completed", 599.0, 600.0)


def test_durations_are_never_negative_and_unknown_starts_are_none() -> None:
    # Another machine's clock stamped the start a little after this one's finish.
    before = record(SagaState.RUNNING, began_at=at(10), updated_at=at(10))
    saved = record(SagaState.COMPLETED, began_at=at(10), updated_at=at(9), finished_at=at(9))
    assert saga_finish(before, saved) == SagaFinish("completed", 0.0, 9.0)
    # A saga started before summaries kept ``began_at``.
    old = record(SagaState.RUNNING, updated_at=at(1))
    saved = record(SagaState.COMPLETED, updated_at=at(4), finished_at=at(4))
    assert saga_finish(old, saved) == SagaFinish("completed", None, 4.0)


# ---- the coordinator's replies -----------------------------------------------------------


async def test_only_the_call_that_finishes_a_saga_says_so() -> None:
    store, sagas, archive = InMemoryPlayerStore(), InMemorySagaLog(), InMemoryPayloadArchive()
    grains = PlayerGrainHost(store, GrainSettings())
    runner = LocalSagaRunner(sagas, archive, grains)
    service = StatsService(sagas, archive, store, grains, InMemoryMessageBus())
    run = uuid.uuid4().hex[:6]
    match = random_match(random.Random(1), f"m{run}", [f"p{run}-{i}" for i in range(3)])
    await service.submit_match(match)
    first = await runner.handle(StartSaga(match["match_id"]))
    assert first.state == "completed" and first.finished is not None
    assert first.finished.state == "completed"
    assert first.finished.saga_s is not None and first.finished.consistency_s is not None
    assert first.finished.consistency_s >= first.finished.saga_s >= 0
    again = await runner.handle(StartSaga(match["match_id"]))  # a redelivered start
    assert again.state == "completed" and again.finished is None
    voided = await runner.handle(VoidMatch(match["match_id"], "cheating"))
    assert voided.finished is not None
    assert (voided.finished.state, voided.finished.consistency_s) == ("compensated", None)
