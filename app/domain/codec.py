"""Saga events and saga state to and from plain dicts, for log rows and the API."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from app.domain import saga as s

_EVENT_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        s.SagaStarted,
        s.PlayerApplied,
        s.PlayerFailed,
        s.RetryScheduled,
        s.PlayerDeadLettered,
        s.SagaCompleted,
        s.SagaStuck,
        s.SagaRedriven,
        s.CompensationStarted,
        s.PlayerCompensated,
        s.SagaCompensated,
    )
}


def event_to_dict(event: s.SagaEvent) -> dict[str, Any]:
    """``{"type": "PlayerApplied", "player_id": ...}``; tuples become lists."""
    out: dict[str, Any] = {"type": type(event).__name__}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def event_from_dict(data: Mapping[str, Any]) -> s.SagaEvent:
    """Inverse of ``event_to_dict``; raises ``ValueError`` for an unknown type."""
    cls = _EVENT_TYPES.get(str(data.get("type")))
    if cls is None:
        raise ValueError(f"unknown saga event type {data.get('type')!r}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    event: s.SagaEvent = cls(**kwargs)
    return event


def progress_to_dict(progress: s.PlayerProgress) -> dict[str, Any]:
    """One player's saga progress as a dict."""
    return {
        "status": progress.status.value,
        "attempts": progress.attempts,
        "applied_order": progress.applied_order,
        "error": progress.error,
        "scheduled": progress.scheduled,
    }


def progress_from_dict(data: Mapping[str, Any]) -> s.PlayerProgress:
    """Inverse of ``progress_to_dict``."""
    return s.PlayerProgress(
        status=s.PlayerStatus(data.get("status", "pending")),
        attempts=int(data.get("attempts", 0)),
        applied_order=data.get("applied_order"),
        error=data.get("error"),
        scheduled=bool(data.get("scheduled", False)),  # absent in rows from before it
    )
