"""A match's ``summary`` row: the saga's state, its players' progress (JSON), counts, the
payload hash and the times, written by ``create`` and every save, read back as a
``SagaRecord``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from app.application.ports import MatchSummary, SagaRecord
from app.domain import codec
from app.domain.model import Match
from app.domain.saga import CompensationStarted, Saga, SagaEvent, SagaStarted, SagaState
from storage.entities import SUMMARY_KEY, checked, dumps, is_finished, loads


def new_summary(match: Match, accepted_at: datetime) -> MatchSummary:
    """The summary of a just-accepted match."""
    return MatchSummary(
        match_id=match.match_id,
        mode=match.mode,
        map=match.map,
        started_at=match.started_at,
        ended_at=match.ended_at,
        payload_hash=match.payload_hash(),
        player_ids=match.player_ids,
        accepted_at=accepted_at,
        updated_at=accepted_at,
    )


def next_summary(
    summary: MatchSummary,
    saga: Saga,
    at: datetime,
    events: Iterable[SagaEvent] = (),
    began_at: datetime | None = None,
) -> MatchSummary:
    """The summary after a save at ``at`` of ``events``: ``finished_at`` is set once, when
    terminal; ``began_at`` (``at`` unless given) when the saga starts, and again when a
    compensation starts; ``published`` once it started (its message was delivered)."""
    finished = summary.finished_at
    if finished is None and is_finished(saga.state):
        finished = at
    began, published = summary.began_at, summary.published
    if any(isinstance(e, SagaStarted | CompensationStarted) for e in events):
        began = began_at or at
    if any(isinstance(e, SagaStarted) for e in events):
        published = True
    return replace(
        summary, updated_at=at, finished_at=finished, began_at=began, published=published
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def saga_fields(saga: Saga, seq: int, summary: MatchSummary) -> dict[str, Any]:
    """The summary properties a save changes (merged into the row)."""
    players = {pid: codec.progress_to_dict(p) for pid, p in saga.players.items()}
    return checked(
        {
            "PartitionKey": summary.match_id,
            "RowKey": SUMMARY_KEY,
            "state": saga.state.value,
            "players": dumps(players),
            "applied_count": saga.applied_count,
            "seq": seq,
            "updated_at": _iso(summary.updated_at),
            "finished_at": _iso(summary.finished_at),
            "began_at": _iso(summary.began_at),
            "published": summary.published,
            **({"index_etag": summary.index_etag} if summary.index_etag else {}),
        }
    )


def summary_entity(summary: MatchSummary, saga: Saga, seq: int) -> dict[str, Any]:
    """The whole ``summary`` row."""
    return {
        **saga_fields(saga, seq, summary),
        "payload_hash": summary.payload_hash,
        "mode": summary.mode,
        "map": summary.map,
        "started_at": _iso(summary.started_at),
        "ended_at": _iso(summary.ended_at),
        "player_ids": dumps(list(summary.player_ids)),
        "accepted_at": _iso(summary.accepted_at),
    }


def saga_record_from_entity(entity: Mapping[str, Any], etag: str) -> SagaRecord:
    """Inverse of ``summary_entity``: the saga rebuilt from the summary row."""
    match_id = entity["PartitionKey"]
    started, ended, accepted = (
        _time(entity["started_at"]),
        _time(entity["ended_at"]),
        _time(entity["accepted_at"]),
    )
    if started is None or ended is None or accepted is None:
        raise ValueError(f"summary row of {match_id!r} lacks a time")
    summary = MatchSummary(
        match_id=match_id,
        mode=entity["mode"],
        map=entity["map"],
        started_at=started,
        ended_at=ended,
        payload_hash=entity["payload_hash"],
        player_ids=tuple(loads(entity["player_ids"])),
        accepted_at=accepted,
        published=bool(entity.get("published", False)),
        updated_at=_time(entity.get("updated_at")),
        finished_at=_time(entity.get("finished_at")),
        began_at=_time(entity.get("began_at")),
        index_etag=entity.get("index_etag") or None,
    )
    players = loads(entity["players"])
    saga = Saga(
        match_id=match_id,
        state=SagaState(entity["state"]),
        players={pid: codec.progress_from_dict(p) for pid, p in players.items()},
        applied_count=int(entity["applied_count"]),
    )
    return SagaRecord(summary, saga, int(entity["seq"]), etag)
