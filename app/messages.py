"""The bus messages statsaga sends: names of queues and the shape of each body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.domain.ids import bus_message_id
from app.domain.saga import Action
from app.ports import BusMessage

MATCHES_QUEUE = "matches"
MAX_REASON_CHARS = 4096
PLAYER_UPDATES_QUEUE = "player-updates"
# Subjects of ``matches`` messages: what the saga message asks for.
COMPLETED, INVALIDATED, RESUME, REDRIVE = (
    "match.completed",
    "match.invalidated",
    "match.resume",
    "match.redrive",
)


def match_completed(match_id: str) -> BusMessage:
    """Starts (or resumes) a match saga; the id doubles as the duplicate-detection key."""
    return BusMessage(bus_message_id(match_id), {"match_id": match_id}, subject=COMPLETED)


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
    """A durable retry of one player's step; the delta is reloaded from the match partition."""

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

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> PlayerRetry:
        """Parse a received body; raises ``KeyError``/``ValueError`` for a malformed one."""
        return cls(
            match_id=str(body["match_id"]),
            player_id=str(body["player_id"]),
            attempt=int(body["attempt"]),
            action=Action(body["action"]),
            dead_letter=body.get("dead_letter"),
        )


def log_fields(message: BusMessage) -> dict[str, str | None]:
    """What lines logged while handling ``message`` carry: its id, and the match (and
    player) its body is about (``None`` for what a malformed body lacks)."""
    match_id, player_id = message.body.get("match_id"), message.body.get("player_id")
    return {
        "message_id": message.message_id,
        "match_id": None if match_id is None else str(match_id),
        "player_id": None if player_id is None else str(player_id),
    }
