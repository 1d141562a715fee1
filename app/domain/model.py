"""The match as a client reports it, after validation: immutable values."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# The per-player counters a client reports; all are non-negative integers.
REPORTED_COUNTERS: tuple[str, ...] = (
    "score",
    "kills",
    "deaths",
    "assists",
    "headshots",
    "shots_fired",
    "shots_hit",
    "damage_dealt",
    "time_played_s",
)


class Outcome(StrEnum):
    """How a match ended for one player."""

    WIN = "win"
    LOSS = "loss"
    TIE = "tie"
    DNF = "dnf"


@dataclass(frozen=True, slots=True)
class WeaponLine:
    """Kills and headshots with one weapon in one match."""

    kills: int = 0
    headshots: int = 0


@dataclass(frozen=True, slots=True)
class PlayerLine:
    """One player's reported line of a match; the counters are authoritative."""

    player_id: str
    outcome: Outcome
    counters: Mapping[str, int]
    team: str | None = None
    medals: Mapping[str, int] = field(default_factory=dict)
    weapons: Mapping[str, WeaponLine] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MatchEvent:
    """One raw telemetry event; only ``kill`` events feed the aggregation."""

    t: float
    type: str
    killer: str | None = None
    victim: str | None = None
    weapon: str | None = None
    headshot: bool = False


@dataclass(frozen=True, slots=True)
class Match:
    """A finished match, validated."""

    match_id: str
    mode: str
    map: str
    started_at: datetime
    ended_at: datetime
    players: tuple[PlayerLine, ...]
    events: tuple[MatchEvent, ...] = ()
    # The canonical JSON, built once: the API hashes it, archives it and sends it with
    # the saga start (~0.5 ms each for 32 players with events).
    _canonical: str | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def player_ids(self) -> tuple[str, ...]:
        """The ids of the players, in the order they were reported."""
        return tuple(p.player_id for p in self.players)

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON-able form: what is archived, hashed and re-parsed."""
        out: dict[str, Any] = {
            "match_id": self.match_id,
            "mode": self.mode,
            "map": self.map,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "players": [_player_dict(p) for p in self.players],
        }
        if self.events:
            out["events"] = [_event_dict(e) for e in self.events]
        return out

    def canonical_json(self) -> str:
        """The canonical form as compact, key-sorted JSON (ASCII): the archived bytes."""
        if self._canonical is None:
            canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
            object.__setattr__(self, "_canonical", canonical)
            return canonical
        return self._canonical

    def payload_hash(self) -> str:
        """SHA-256 of the canonical form: equal bodies hash equal whatever their layout."""
        return payload_hash_of(self.canonical_json())

    @classmethod
    def from_canonical(cls, data: Mapping[str, Any]) -> Match:
        """Inverse of ``to_dict``, without validation: only for a payload that passed
        ``parse_match`` already (carried with its hash checked). With the JSON decode,
        2.4-2.7x cheaper than validating again (16v16 with 223 kill events: 0.48 ms
        against 1.31 ms; without events: 0.19 against 0.47 ms)."""
        return cls(
            match_id=data["match_id"],
            mode=data["mode"],
            map=data["map"],
            started_at=_moment(data["started_at"]),
            ended_at=_moment(data["ended_at"]),
            players=tuple(_player_from(p) for p in data["players"]),
            events=tuple(_event_from(e) for e in data.get("events", ())),
        )


def payload_hash_of(canonical: str) -> str:
    """The payload hash of a canonical JSON text (``Match.canonical_json``)."""
    return hashlib.sha256(canonical.encode()).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _player_from(p: Mapping[str, Any]) -> PlayerLine:
    return PlayerLine(
        player_id=p["player_id"],
        outcome=Outcome(p["outcome"]),
        counters={name: p.get(name, 0) for name in REPORTED_COUNTERS},
        team=p.get("team"),
        medals=dict(p.get("medals", {})),
        weapons={
            name: WeaponLine(w.get("kills", 0), w.get("headshots", 0))
            for name, w in p.get("weapons", {}).items()
        },
    )


def _event_from(e: Mapping[str, Any]) -> MatchEvent:
    return MatchEvent(
        float(e["t"]),
        e["type"],
        e.get("killer"),
        e.get("victim"),
        e.get("weapon"),
        bool(e.get("headshot", False)),
    )


def _player_dict(p: PlayerLine) -> dict[str, Any]:
    out: dict[str, Any] = {"player_id": p.player_id, "outcome": p.outcome.value}
    if p.team is not None:
        out["team"] = p.team
    out.update(p.counters)
    out["medals"] = dict(p.medals)
    out["weapons"] = {
        name: {"kills": w.kills, "headshots": w.headshots} for name, w in p.weapons.items()
    }
    return out


def _event_dict(e: MatchEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"t": e.t, "type": e.type}
    for key in ("killer", "victim", "weapon"):
        value = getattr(e, key)
        if value is not None:
            out[key] = value
    if e.headshot:
        out["headshot"] = True
    return out
