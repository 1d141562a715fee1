"""The bus messages statsaga sends: names of queues and the shape of each body."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.application.commands import (
    RedriveSaga,
    ResumeSaga,
    RetryPlayer,
    SagaCommand,
    StartSaga,
    VoidMatch,
)
from app.application.ports import BusMessage, CarriedStart, MatchSummary, SagaRecord
from app.domain.ids import bus_message_id
from app.domain.saga import Action, Saga, SagaState

log = logging.getLogger(__name__)
MATCHES_QUEUE = "matches"
# A saga start carries the match's payload while its body stays under this; past it the
# payload stays in the blob (a claim check). Service Bus refuses a message over 256 KiB
# (``MAX_MESSAGE_BYTES``), and the SDK adds headers and properties to the body.
CARRY_LIMIT_BYTES = 192 * 1024
MAX_REASON_CHARS = 4096
PLAYER_UPDATES_QUEUE = "player-updates"
# Subjects of ``matches`` messages: what the saga message asks for.
COMPLETED, INVALIDATED, RESUME, REDRIVE = (
    "match.completed",
    "match.invalidated",
    "match.resume",
    "match.redrive",
)


def match_completed(match_id: str, start: CarriedStart | None = None) -> BusMessage:
    """Starts (or resumes) a match saga; the id doubles as the duplicate-detection key.

    ``start`` (the API's publish): the record as created and the payload go with it, so
    that the Game actor reads nothing on the message's first delivery; the payload is
    left out (the blob is the claim check) when the body would reach
    ``CARRY_LIMIT_BYTES``. A bare body (the outbox sweeper's) makes the actor load."""
    body: dict[str, Any] = {"match_id": match_id}
    if start is not None:
        if start.record.saga.state is not SagaState.ACCEPTED or start.record.seq != 0:
            raise ValueError(f"match {match_id!r}: only a saga not yet started is carried")
        body["start"] = _record_to_dict(start.record)
        if start.payload is not None:
            carried = {**body, "payload": start.payload}
            if len(json.dumps(carried, separators=(",", ":"))) < CARRY_LIMIT_BYTES:
                body = carried
    return BusMessage(bus_message_id(match_id), body, subject=COMPLETED)


def carried_start(body: Mapping[str, Any]) -> CarriedStart | None:
    """The start a ``match.completed`` body carries; ``None`` for a bare body. A malformed
    one is logged and ignored: the coordinator then loads the saga, which is always right."""
    raw = body.get("start")
    if raw is None:
        return None
    try:
        record = _record_from_dict(str(body["match_id"]), raw)
        payload = body.get("payload")
        if payload is not None and not isinstance(payload, str):
            raise TypeError(f"payload is a {type(payload).__name__}, not a JSON text")
    except (KeyError, TypeError, ValueError) as exc:
        log.warning(
            "ignoring the malformed start the message carries (%s: %s)", type(exc).__name__, exc
        )
        return None
    return CarriedStart(record, payload)


_TIMES = ("started_at", "ended_at", "accepted_at", "updated_at", "finished_at", "began_at")


def _record_to_dict(record: SagaRecord) -> dict[str, Any]:
    """A not-yet-started saga's record as JSON: its summary, seq and etag (the state and
    players of an accepted saga are implied)."""
    s = record.summary
    summary: dict[str, Any] = {
        "mode": s.mode,
        "map": s.map,
        "payload_hash": s.payload_hash,
        "player_ids": list(s.player_ids),
        "published": s.published,
        "index_etag": s.index_etag,
    }
    for name in _TIMES:
        moment: datetime | None = getattr(s, name)
        summary[name] = None if moment is None else moment.isoformat()
    return {"etag": record.etag, "seq": record.seq, "summary": summary}


def _record_from_dict(match_id: str, data: Mapping[str, Any]) -> SagaRecord:
    """Inverse of ``_record_to_dict``; ``KeyError``/``TypeError``/``ValueError`` if malformed."""
    raw = data["summary"]
    t = {n: None if raw[n] is None else datetime.fromisoformat(raw[n]) for n in _TIMES}
    summary = MatchSummary(
        match_id=match_id,
        mode=str(raw["mode"]),
        map=str(raw["map"]),
        started_at=_required(t["started_at"]),
        ended_at=_required(t["ended_at"]),
        payload_hash=str(raw["payload_hash"]),
        player_ids=tuple(str(p) for p in raw["player_ids"]),
        accepted_at=_required(t["accepted_at"]),
        published=bool(raw["published"]),
        updated_at=t["updated_at"],
        finished_at=t["finished_at"],
        began_at=t["began_at"],
        index_etag=None if raw["index_etag"] is None else str(raw["index_etag"]),
    )
    if int(data["seq"]) != 0:
        raise ValueError("only a saga not yet started is carried")
    return SagaRecord(summary, Saga(match_id), 0, str(data["etag"]))


def _required(moment: datetime | None) -> datetime:
    if moment is None:
        raise ValueError("a required time is missing")
    return moment


def match_resume(match_id: str, seq: int) -> BusMessage:
    """Moves a stalled saga on; one per log position, so a saga that moved and stalled
    again gets a new message while a repeat for the same stall is a duplicate."""
    return BusMessage(
        bus_message_id(match_id, "resume", str(seq)), {"match_id": match_id}, subject=RESUME
    )


def match_redrive(match_id: str, seq: int) -> BusMessage:
    """Retries the dead players of a stuck saga (an operator's decision)."""
    return BusMessage(
        bus_message_id(match_id, "redrive", str(seq)), {"match_id": match_id}, subject=REDRIVE
    )


def match_invalidated(match_id: str, reason: str) -> BusMessage:
    """Starts the compensation of a match."""
    return BusMessage(
        bus_message_id(match_id, "invalidate"),
        {"match_id": match_id, "reason": reason},
        subject=INVALIDATED,
    )


@dataclass(frozen=True, slots=True)
class PlayerRetry:
    """The message of a durable retry of one player's step (with ``dead_letter``: its
    hand-over to the operators); received, it is a ``RetryPlayer`` (``to_command``)."""

    match_id: str
    player_id: str
    attempt: int
    action: Action
    dead_letter: str | None = None  # set: hand this step to the operators at once

    def to_message(self) -> BusMessage:
        """As a bus message whose id makes a repeated schedule a duplicate."""
        suffix = "dead" if self.dead_letter else str(self.attempt)
        body: dict[str, Any] = {
            "match_id": self.match_id,
            "player_id": self.player_id,
            "attempt": self.attempt,
            "action": self.action.value,
        }
        if self.dead_letter:
            # Bounded: an error's text must not push the message past the bus's size limit.
            body["dead_letter"] = self.dead_letter[:MAX_REASON_CHARS]
        mid = bus_message_id(self.match_id, self.player_id, self.action.value, suffix)
        return BusMessage(mid, body, subject="player.retry")


class Rejected(Exception):
    """A received message that asks for no command the worker can run: it is
    dead-lettered with ``reason`` and ``description`` (retrying it cannot help)."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(f"{reason}: {description}")
        self.reason = reason
        self.description = description


def to_command(queue: str, message: BusMessage, first_delivery: bool) -> SagaCommand:
    """The saga command a message received from ``queue`` asks for: the one place a body
    is parsed. Raises ``Rejected``: ``PlayerStepFailed`` for a player step a coordinator
    handed to the operators, ``UnprocessableMessage`` for a malformed body.

    A malformed start a ``match.completed`` body carries is not a reason to reject it
    (``carried_start``); nor is an unknown subject on ``matches``: it starts the saga."""
    body = message.body
    if queue == PLAYER_UPDATES_QUEUE and body.get("dead_letter"):
        raise Rejected("PlayerStepFailed", str(body["dead_letter"]))
    try:
        return _parse(queue, message, first_delivery)
    except (KeyError, TypeError, ValueError) as exc:
        raise Rejected("UnprocessableMessage", f"{type(exc).__name__}: {exc}") from exc


def _parse(queue: str, message: BusMessage, first_delivery: bool) -> SagaCommand:
    body = message.body
    if queue == PLAYER_UPDATES_QUEUE:
        return RetryPlayer(
            match_id=str(body["match_id"]),
            player_id=str(body["player_id"]),
            attempt=int(body["attempt"]),
            action=Action(body["action"]),
        )
    match_id = str(body["match_id"])
    if message.subject == INVALIDATED:
        return VoidMatch(match_id, str(body.get("reason", "")))
    if message.subject == RESUME:
        return ResumeSaga(match_id)
    if message.subject == REDRIVE:
        return RedriveSaga(match_id)
    return StartSaga(match_id, carried_start(body) if first_delivery else None)


def log_fields(message: BusMessage) -> dict[str, str | None]:
    """What lines logged while handling ``message`` carry: its id, and the match (and
    player) its body is about (``None`` for what a malformed body lacks)."""
    match_id, player_id = message.body.get("match_id"), message.body.get("player_id")
    return {
        "message_id": message.message_id,
        "match_id": None if match_id is None else str(match_id),
        "player_id": None if player_id is None else str(player_id),
    }
