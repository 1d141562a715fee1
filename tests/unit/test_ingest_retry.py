"""Ingest's in-process retries over in-memory adapters: which errors are retried, what a
retry that finds its own lost write answers, and the deadline. (The same against the
real Azurite with injected faults: tests/integration/test_ingest_faults.py.)"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from actors.grains import PlayerGrainHost
from app.application.messages import MATCHES_QUEUE
from app.application.ports import BusMessage, SagaRecord
from app.application.retrying import Deadline, retry_transient
from app.application.services import StatsService
from app.domain.errors import (
    BusUnavailable,
    ConcurrencyConflict,
    DuplicateMatch,
    PermanentError,
    StorageUnavailable,
)
from app.domain.model import Match
from app.domain.retry import InProcessRetry, RetryPolicy
from app.domain.stats import StatDelta
from app.settings import Settings
from storage.memory import InMemoryPayloadArchive, InMemoryPlayerStore, InMemorySagaLog
from storage.memory_bus import InMemoryMessageBus
from tests.support.matches import random_match

FAST = InProcessRetry(deadline_s=2.0, backoff=RetryPolicy(base_s=0.001, cap_s=0.01, jitter=1.0))


@dataclass
class LossySagaLog(InMemorySagaLog):
    """``create`` fails before writing ``before`` times, then writes and loses the answer
    ``lost`` times."""

    before: int = 0
    lost: int = 0
    calls: int = 0

    def __post_init__(self) -> None:
        super().__init__()

    async def create(
        self, match: Match, accepted_at: datetime, deltas: Mapping[str, StatDelta]
    ) -> tuple[SagaRecord, bool]:
        self.calls += 1
        if self.before > 0:
            self.before -= 1
            raise StorageUnavailable("request not sent")
        outcome = await super().create(match, accepted_at, deltas)
        if self.lost > 0:
            self.lost -= 1
            raise StorageUnavailable("answer lost")
        return outcome


@dataclass
class FlakyBus(InMemoryMessageBus):
    """Refuses the first ``failures`` publishes with ``BusUnavailable``; counts the calls."""

    failures: int = 0
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    async def publish(self, queue: str, message: BusMessage) -> None:
        self.calls.append(message.message_id)
        if self.failures > 0:
            self.failures -= 1
            raise BusUnavailable("broker unreachable")
        await super().publish(queue, message)


def service(sagas: InMemorySagaLog, bus: InMemoryMessageBus | None = None) -> StatsService:
    store = InMemoryPlayerStore()
    return StatsService(
        sagas,
        InMemoryPayloadArchive(),
        store,
        PlayerGrainHost(store),
        bus or InMemoryMessageBus(),
        retry=FAST,
    )


def a_match(match_id: str = "m-1") -> dict[str, Any]:
    return random_match(random.Random(1), match_id, [f"p{i}" for i in range(4)], size=2)


async def test_a_summary_written_but_its_answer_lost_is_accepted_as_new() -> None:
    sagas = LossySagaLog(before=1, lost=1)
    svc = service(sagas)
    body = a_match()
    submitted = await svc.submit_match(body)
    assert submitted.created  # 202: the row the retry found is this POST's own
    assert sagas.calls == 3
    again = await svc.submit_match(body)
    assert not again.created  # a real re-post of the same body is still a 200


async def test_a_different_body_under_a_known_id_is_not_retried() -> None:
    sagas = LossySagaLog()
    svc = service(sagas)
    body = a_match()
    await svc.submit_match(body)
    other = {
        **body,
        "players": [
            {**body["players"][0], "score": 1 + body["players"][0]["score"]},
            *body["players"][1:],
        ],
    }
    with pytest.raises(DuplicateMatch):
        await svc.submit_match(other)
    assert sagas.calls == 2


async def test_a_publish_refused_by_a_down_bus_is_retried_once_it_answers() -> None:
    bus = FlakyBus(failures=2)
    svc = service(InMemorySagaLog(), bus)
    await svc.submit_match(a_match())
    assert bus.calls == ["m-1"] * 3
    assert [r.message.message_id for r in await bus.receive(MATCHES_QUEUE, 10, 0.0)] == ["m-1"]


async def test_storage_that_stays_down_raises_once_the_deadline_has_passed() -> None:
    sagas = LossySagaLog(before=10_000)
    svc = StatsService(
        sagas,
        InMemoryPayloadArchive(),
        InMemoryPlayerStore(),
        PlayerGrainHost(InMemoryPlayerStore()),
        InMemoryMessageBus(),
        retry=InProcessRetry(deadline_s=0.3, backoff=FAST.backoff),
    )
    with pytest.raises(StorageUnavailable):
        await svc.submit_match(a_match())
    assert sagas.calls > 1


@pytest.mark.parametrize("error", [ConcurrencyConflict, PermanentError, ValueError])
async def test_only_transient_errors_are_retried(error: type[Exception]) -> None:
    calls = 0

    async def fails() -> None:
        nonlocal calls
        calls += 1
        raise error("no")

    with pytest.raises(error):
        await retry_transient(fails, Deadline(FAST), "a write")
    assert calls == 1


async def test_an_attempt_still_running_at_the_deadline_is_cut_off() -> None:
    async def hangs() -> None:
        await asyncio.sleep(60)

    policy = InProcessRetry(deadline_s=0.2, backoff=FAST.backoff)
    with pytest.raises(BusUnavailable, match="no answer"):
        await retry_transient(hangs, Deadline(policy), "a publish", timeout_error=BusUnavailable)


async def test_a_slow_attempt_is_cut_off_and_tried_afresh_within_the_deadline() -> None:
    """As when the SDK sits in its own 1.6 s back-off after a second dropped request."""
    calls = 0

    async def slow_once() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(60)
        return "stored"

    policy = InProcessRetry(deadline_s=2.0, backoff=FAST.backoff, attempt_timeout_s=0.1)
    assert await retry_transient(slow_once, Deadline(policy), "a write") == "stored"
    assert calls == 2


def test_a_deadline_must_be_positive() -> None:
    with pytest.raises(ValueError, match="deadline_s"):
        InProcessRetry(deadline_s=0)
    with pytest.raises(ValueError, match="attempt_timeout_s"):
        InProcessRetry(attempt_timeout_s=0)


def test_the_deadline_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATSAGA_INGEST_RETRY_DEADLINE_S", "1.5")
    assert Settings(_env_file=None).ingest_retry.deadline_s == 1.5  # type: ignore[call-arg]
    monkeypatch.setenv("STATSAGA_INGEST_RETRY_DEADLINE_S", "0")
    with pytest.raises(ValidationError, match="ingest_retry_deadline_s"):
        Settings(_env_file=None)  # type: ignore[call-arg]
