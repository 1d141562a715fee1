"""Saga events and player progress to and from plain (JSON-able) dicts."""

from __future__ import annotations

import json
import typing

import pytest

from app.domain import saga as s
from app.domain.codec import (
    event_from_dict,
    event_to_dict,
    progress_from_dict,
    progress_to_dict,
)

SAMPLES: list[s.SagaEvent] = [
    s.SagaStarted(("p-1", "p-2")),
    s.PlayerApplied("p-1"),
    s.PlayerApplied("p-1", already=True),
    s.PlayerFailed("p-1", "timeout"),
    s.PlayerFailed("p-1", "corrupt", transient=False),
    s.RetryScheduled("p-1", 3, 4.25),
    s.PlayerDeadLettered("p-1", "gave up after 8 attempts: timeout"),
    s.SagaCompleted(),
    s.SagaStuck(("p-1", "p-3")),
    s.SagaRedriven(),
    s.CompensationStarted("cheated"),
    s.PlayerCompensated("p-1"),
    s.PlayerCompensated("p-1", reverted=False),
    s.SagaCompensated(),
]


def test_the_samples_cover_every_event_type() -> None:
    assert {type(e) for e in SAMPLES} == set(typing.get_args(s.SagaEvent))


@pytest.mark.parametrize("event", SAMPLES, ids=repr)
def test_every_event_round_trips_through_json(event: s.SagaEvent) -> None:
    data = event_to_dict(event)
    assert data["type"] == type(event).__name__
    assert event_from_dict(json.loads(json.dumps(data))) == event


def test_tuples_are_stored_as_lists() -> None:
    assert event_to_dict(s.SagaStuck(("p-1",))) == {"type": "SagaStuck", "dead": ["p-1"]}


@pytest.mark.parametrize("data", [{"type": "PlayerExploded"}, {"type": None}, {}, {"type": 3}])
def test_an_unknown_type_is_a_value_error(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="unknown saga event type"):
        event_from_dict(data)


@pytest.mark.parametrize(
    "progress",
    [
        s.PlayerProgress(),
        s.PlayerProgress(s.PlayerStatus.APPLIED, 2, 5, None),
        s.PlayerProgress(s.PlayerStatus.DEAD, 8, None, "timeout"),
        s.PlayerProgress(s.PlayerStatus.RETRYING, 2, None, "timeout", scheduled=True),
    ],
    ids=repr,
)
def test_progress_round_trips_through_json(progress: s.PlayerProgress) -> None:
    assert progress_from_dict(json.loads(json.dumps(progress_to_dict(progress)))) == progress


def test_progress_stored_before_the_schedule_flag_reads_as_not_scheduled() -> None:
    old = {"status": "retrying", "attempts": 2, "applied_order": None, "error": "timeout"}
    assert progress_from_dict(old) == s.PlayerProgress(s.PlayerStatus.RETRYING, 2, None, "timeout")
