"""Per-player deltas and the service record they add up to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from app.domain.model import REPORTED_COUNTERS, Outcome
from app.domain.ratings import RatingChange, SkillRating

# Counters a service record keeps: one per match outcome plus the reported ones.
RECORD_COUNTERS: tuple[str, ...] = ("matches", "wins", "losses", "ties", "dnf", *REPORTED_COUNTERS)
_OUTCOME_COUNTER = {
    Outcome.WIN: "wins",
    Outcome.LOSS: "losses",
    Outcome.TIE: "ties",
    Outcome.DNF: "dnf",
}

Counters = Mapping[str, int]
Weapons = Mapping[str, Mapping[str, int]]

# A record is one JSON string property in Table Storage (at most 32K characters: 64 KiB of
# UTF-16), and medal, weapon and mode names are open-ended: without a bound, enough new
# names would make the record unwritable and every later match of the player stuck. So a
# record keeps at most this many names of each kind; a match's names past that count in
# one overflow entry. Halo 4 had ~50 weapons, ~150 medals and a dozen modes per title.
# ``tests/unit/test_record_bounds.py`` proves the largest possible record fits.
MAX_RECORD_WEAPONS = 64
MAX_RECORD_MEDALS = 128
MAX_RECORD_MODES = 20
# Not a valid id (ids start with a letter or digit), so no posted name can collide with it.
OTHER = "_other"


@dataclass(frozen=True, slots=True)
class StatDelta:
    """What one match adds to one player's record; applying it is idempotent per match."""

    match_id: str
    player_id: str
    mode: str
    map: str
    ended_at: datetime
    outcome: Outcome
    team: str | None
    counters: Counters
    medals: Counters = field(default_factory=dict)
    weapons: Weapons = field(default_factory=dict)
    # Where the record counted this match's mode when ``mode`` did not fit (``OTHER``);
    # ``None``: under ``mode``. Kept in the history row so that a revert undoes the same.
    mode_key: str | None = None
    # The player's rating change in the match's mode, computed once by the Game actor
    # (``None``: the match rates nobody, or not this player; see ``ratings.rate_match``).
    rating: RatingChange | None = None

    @property
    def record_mode(self) -> str:
        """The key of the record's ``modes`` that this match counts in."""
        return self.mode_key or self.mode

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, stored in the match partition and in the player's history row."""
        extra: dict[str, Any] = {"mode_key": self.mode_key} if self.mode_key else {}
        if self.rating is not None:
            extra["rating"] = self.rating.to_dict()
        return {
            **extra,
            "match_id": self.match_id,
            "player_id": self.player_id,
            "mode": self.mode,
            "map": self.map,
            "ended_at": self.ended_at.isoformat(),
            "outcome": self.outcome.value,
            "team": self.team,
            "counters": dict(self.counters),
            "medals": dict(self.medals),
            "weapons": {k: dict(v) for k, v in self.weapons.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatDelta:
        """Inverse of ``to_dict``."""
        return cls(
            match_id=data["match_id"],
            player_id=data["player_id"],
            mode=data["mode"],
            map=data["map"],
            ended_at=datetime.fromisoformat(data["ended_at"]),
            outcome=Outcome(data["outcome"]),
            team=data.get("team"),
            counters=dict(data["counters"]),
            medals=dict(data.get("medals", {})),
            weapons={k: dict(v) for k, v in data.get("weapons", {}).items()},
            mode_key=data.get("mode_key"),
            rating=RatingChange.from_dict(data["rating"]) if data.get("rating") else None,
        )


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """A player's lifetime totals, overall and per mode."""

    player_id: str
    counters: Counters = field(default_factory=lambda: dict.fromkeys(RECORD_COUNTERS, 0))
    medals: Counters = field(default_factory=dict)
    weapons: Weapons = field(default_factory=dict)
    modes: Mapping[str, Counters] = field(default_factory=dict)
    first_played: datetime | None = None
    last_played: datetime | None = None
    # Per mode, under the same keys as ``modes`` (so the same bound): only modes with a
    # rated match.
    ratings: Mapping[str, SkillRating] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able storage form (no derived ratios)."""
        rated = {"ratings": {k: r.to_dict() for k, r in self.ratings.items()}}
        return {
            **(rated if self.ratings else {}),
            "player_id": self.player_id,
            "counters": dict(self.counters),
            "medals": dict(self.medals),
            "weapons": {k: dict(v) for k, v in self.weapons.items()},
            "modes": {k: dict(v) for k, v in self.modes.items()},
            "first_played": self.first_played.isoformat() if self.first_played else None,
            "last_played": self.last_played.isoformat() if self.last_played else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceRecord:
        """Inverse of ``to_dict``; counters missing from old rows read as zero."""
        first, last = data.get("first_played"), data.get("last_played")
        return cls(
            player_id=data["player_id"],
            counters={**dict.fromkeys(RECORD_COUNTERS, 0), **data.get("counters", {})},
            medals=dict(data.get("medals", {})),
            weapons={k: dict(v) for k, v in data.get("weapons", {}).items()},
            modes={k: dict(v) for k, v in data.get("modes", {}).items()},
            first_played=datetime.fromisoformat(first) if first else None,
            last_played=datetime.fromisoformat(last) if last else None,
            ratings={k: SkillRating.from_dict(r) for k, r in data.get("ratings", {}).items()},
        )

    def rating(self, mode: str) -> SkillRating:
        """The rating a match of ``mode`` is rated from: the mode's, or the overflow
        entry's when the mode would count there (see ``fit_delta``), or the default."""
        key = mode
        if mode not in self.modes and _named(self.modes) >= MAX_RECORD_MODES:
            key = OTHER
        return self.ratings.get(key) or SkillRating()


def _rated(
    ratings: Mapping[str, SkillRating], delta: StatDelta, sign: int
) -> Mapping[str, SkillRating]:
    """``ratings`` with the delta's rating change added (``sign`` 1) or taken back (-1).
    A mode whose last rated match is taken back loses its entry, so that a record with a
    voided match equals the record that never had it."""
    if delta.rating is None:
        return ratings
    key, change = delta.record_mode, delta.rating.delta
    held = ratings.get(key) or SkillRating()
    now = held.plus(change) if sign > 0 else held.minus(change)
    out = dict(ratings)
    if now.matches > 0:
        out[key] = now
    else:
        out.pop(key, None)
    return out


def delta_counters(outcome: Outcome, reported: Counters) -> dict[str, int]:
    """The record counters one match adds: one match, its outcome, the reported counters."""
    counters = dict.fromkeys(RECORD_COUNTERS, 0)
    counters["matches"] = 1
    counters[_OUTCOME_COUNTER[outcome]] = 1
    for name in REPORTED_COUNTERS:
        counters[name] = reported.get(name, 0)
    return counters


def _add(
    a: Counters, b: Counters, sign: int, keep: tuple[str, ...] = RECORD_COUNTERS
) -> dict[str, int]:
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, 0) + sign * value
    # A compensation may bring an entry back to zero: drop it so that a record with a
    # voided match equals the record that never had it.
    return {k: v for k, v in out.items() if v != 0 or k in keep}


def _add_nested(a: Weapons, b: Weapons, sign: int) -> dict[str, dict[str, int]]:
    out = {k: dict(v) for k, v in a.items()}
    for key, inner in b.items():
        merged = _add(out.get(key, {}), inner, sign)
        if any(merged.values()):
            out[key] = merged
        else:
            out.pop(key, None)
    return out


def apply_delta(record: ServiceRecord, delta: StatDelta) -> ServiceRecord:
    """The record after one match (the caller guarantees each match is applied once)."""
    played = delta.ended_at
    return replace(
        record,
        counters=_add(record.counters, delta.counters, 1),
        medals=_add(record.medals, delta.medals, 1, keep=()),
        weapons=_add_nested(record.weapons, delta.weapons, 1),
        modes=_add_nested(record.modes, {delta.record_mode: delta.counters}, 1),
        ratings=_rated(record.ratings, delta, 1),
        first_played=min(record.first_played, played) if record.first_played else played,
        last_played=max(record.last_played, played) if record.last_played else played,
    )


def revert_delta(record: ServiceRecord, delta: StatDelta) -> ServiceRecord:
    """The record without one match (compensation). first/last played are left as they are:
    they are recomputed from the match history by the store, which knows the other matches."""
    return replace(
        record,
        counters=_add(record.counters, delta.counters, -1),
        medals=_add(record.medals, delta.medals, -1, keep=()),
        weapons=_add_nested(record.weapons, delta.weapons, -1),
        modes=_add_nested(record.modes, {delta.record_mode: delta.counters}, -1),
        ratings=_rated(record.ratings, delta, -1),
    )


def fit_delta(record: ServiceRecord, delta: StatDelta) -> StatDelta:
    """``delta`` as ``record`` can hold it: medals, weapons and a mode the record does not
    have yet, past its bounds, move to ``OTHER``. Counters are never touched, and the same
    record and delta always fit the same way (names are taken in sorted order)."""
    medals = _fit(record.medals, delta.medals, MAX_RECORD_MEDALS, _merge_count)
    weapons = _fit(record.weapons, delta.weapons, MAX_RECORD_WEAPONS, _merge_line)
    mode_key = delta.mode_key
    if mode_key is None and delta.mode not in record.modes:
        mode_key = OTHER if _named(record.modes) >= MAX_RECORD_MODES else None
    if medals == delta.medals and weapons == delta.weapons and mode_key == delta.mode_key:
        return delta
    return replace(delta, medals=medals, weapons=weapons, mode_key=mode_key)


def apply_fitted(record: ServiceRecord, delta: StatDelta) -> tuple[ServiceRecord, StatDelta]:
    """The record after one match fitted to it, and the fitted delta: what a revert must
    subtract, so it is what the store keeps in the history row."""
    fitted = fit_delta(record, delta)
    return apply_delta(record, fitted), fitted


def sum_deltas(player_id: str, deltas: Iterable[StatDelta]) -> ServiceRecord:
    """The record of a new player after all ``deltas``: what an audit recomputes."""
    record = ServiceRecord(player_id)
    for delta in deltas:
        record, _ = apply_fitted(record, delta)
    return record


def _named(entries: Mapping[str, Any]) -> int:
    return sum(1 for name in entries if name != OTHER)


def _merge_count(a: int | None, b: int) -> int:
    return (a or 0) + b


def _merge_line(a: Mapping[str, int] | None, b: Mapping[str, int]) -> dict[str, int]:
    return {k: (a or {}).get(k, 0) + b.get(k, 0) for k in {*(a or {}), *b}}


def _fit(held: Mapping[str, Any], new: Mapping[str, Any], bound: int, merge: Any) -> Any:
    """``new`` with the names ``held`` has no room for merged into ``OTHER``."""
    room = bound - _named(held)
    out: dict[str, Any] = {}
    for name in sorted(new):
        if name in held or name == OTHER:
            out[name] = merge(out.get(name), new[name]) if name == OTHER else new[name]
        elif room > 0:
            out[name] = new[name]
            room -= 1
        else:
            out[OTHER] = merge(out.get(OTHER), new[name])
    return out


def ratios(counters: Counters) -> dict[str, float]:
    """Derived figures: kd = kills/max(deaths,1), kda = kills + assists/3 - deaths (Halo),
    accuracy = shots_hit/shots_fired, win_rate = wins/matches."""
    kills, deaths = counters.get("kills", 0), counters.get("deaths", 0)
    fired, matches = counters.get("shots_fired", 0), counters.get("matches", 0)
    return {
        "kd": round(kills / max(deaths, 1), 4),
        "kda": round(kills + counters.get("assists", 0) / 3 - deaths, 4),
        "accuracy": round(counters.get("shots_hit", 0) / fired, 4) if fired else 0.0,
        "win_rate": round(counters.get("wins", 0) / matches, 4) if matches else 0.0,
    }


def public_record(record: ServiceRecord) -> dict[str, Any]:
    """The service record as stats sites read it: flat counters, ratios, per-mode blocks."""
    out: dict[str, Any] = {"player_id": record.player_id}
    out.update(record.counters)
    out.update(ratios(record.counters))
    out["medals"] = dict(sorted(record.medals.items()))
    out["weapons"] = {k: dict(v) for k, v in sorted(record.weapons.items())}
    out["modes"] = {mode: _mode_block(record, mode, c) for mode, c in sorted(record.modes.items())}
    out["ratings"] = {mode: r.public() for mode, r in sorted(record.ratings.items())}
    out["first_played"] = record.first_played.isoformat() if record.first_played else None
    out["last_played"] = record.last_played.isoformat() if record.last_played else None
    return out


def public_mode_record(record: ServiceRecord, mode: str) -> dict[str, Any]:
    """The record's block of one mode, flat like the whole record; zeros for a mode the
    player never played (medals and weapons are kept overall, not per mode)."""
    counters = {**dict.fromkeys(RECORD_COUNTERS, 0), **record.modes.get(mode, {})}
    return {"player_id": record.player_id, "mode": mode, **_mode_block(record, mode, counters)}


def _mode_block(record: ServiceRecord, mode: str, counters: Counters) -> dict[str, Any]:
    """One mode's counters, ratios and rating (``None``: no rated match in the mode)."""
    rating = record.ratings.get(mode)
    return {**dict(counters), **ratios(counters), "rating": rating.public() if rating else None}
