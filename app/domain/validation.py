"""Validation of a posted match: every rule, each error naming its field."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from app.domain.errors import FieldError, InvalidMatch
from app.domain.ids import id_problem
from app.domain.model import (
    REPORTED_COUNTERS,
    Match,
    MatchEvent,
    Outcome,
    PlayerLine,
    WeaponLine,
)

MAX_PLAYERS = 32
MAX_EVENTS = 10_000
MAX_NAMED_ENTRIES = 64  # medals or weapons per player
MAX_MATCH_DURATION = timedelta(hours=6)
MAX_CLOCK_SKEW = timedelta(minutes=5)
EARLIEST = datetime(2001, 11, 15, tzinfo=UTC)  # nothing was played before Halo
# Upper bounds keep a forged report from poisoning lifetime totals (and Int64 columns).
COUNTER_MAX: Mapping[str, int] = {
    "score": 1_000_000,
    "kills": 10_000,
    "deaths": 10_000,
    "assists": 10_000,
    "headshots": 10_000,
    "shots_fired": 1_000_000,
    "shots_hit": 1_000_000,
    "damage_dealt": 10_000_000,
    "time_played_s": int(MAX_MATCH_DURATION.total_seconds()),
}
MEDAL_MAX = 10_000
# RFC 3339 date-times (JSON Schema's ``date-time``), not every form ``fromisoformat`` takes.
DATE_TIME = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$"
_DATE_TIME_RE = re.compile(DATE_TIME)
# The fields a client may send, at each level; anything else is refused by name, so that a
# misspelt counter ("kils") fails loudly instead of counting as zero.
MATCH_FIELDS = frozenset({"match_id", "mode", "map", "started_at", "ended_at", "players", "events"})
PLAYER_FIELDS = frozenset({"player_id", "team", "outcome", "medals", "weapons", *REPORTED_COUNTERS})
WEAPON_FIELDS = frozenset({"kills", "headshots"})
EVENT_FIELDS = frozenset({"t", "type", "killer", "victim", "weapon", "headshot"})

Loc = tuple[str | int, ...]


class _Errors:
    """Collects every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, loc: Loc, msg: str, kind: str = "value_error") -> None:
        self.items.append(FieldError(loc, msg, kind))

    def ident(self, data: Mapping[str, Any], key: str, loc: Loc, required: bool = True) -> str:
        value = data.get(key)
        if value is None:
            if required:
                self.add((*loc, key), "field required", "missing")
            return ""
        problem = id_problem(value)
        if problem:
            self.add((*loc, key), problem)
            return ""
        return str(value)

    def unknown(self, data: Mapping[str, Any], allowed: frozenset[str], loc: Loc) -> None:
        for key in data:
            if key not in allowed:
                self.add((*loc, str(key)[:64]), "unknown field", "extra_forbidden")

    def count(self, value: Any, loc: Loc, maximum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(loc, "must be an integer", "int_type")
            return 0
        if value < 0:
            self.add(loc, "must be >= 0")
            return 0
        if value > maximum:
            self.add(loc, f"must be <= {maximum}")
            return 0
        return value

    def moment(self, data: Mapping[str, Any], key: str) -> datetime | None:
        value = data.get(key)
        if value is None:
            self.add((key,), "field required", "missing")
            return None
        if not isinstance(value, str):
            self.add((key,), "must be an ISO 8601 date-time string", "datetime_type")
            return None
        example = "e.g. 2026-11-21T18:00:00Z"
        if not _DATE_TIME_RE.fullmatch(value):
            self.add((key,), f"must be an RFC 3339 date-time with a time zone, {example}")
            return None
        try:
            parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        except ValueError:  # the right shape, but no such moment (month 13, hour 25)
            self.add((key,), f"must be a real date and time, {example}")
            return None
        return parsed.astimezone(UTC)


def parse_match(data: object, now: datetime | None) -> Match:
    """Turn a decoded JSON body into a ``Match``, or raise ``InvalidMatch`` naming each field.

    ``now`` bounds ``ended_at``; ``None`` skips that check (re-reading an archived match)."""
    errors = _Errors()
    if not isinstance(data, Mapping):
        raise InvalidMatch([FieldError((), "body must be a JSON object", "dict_type")])
    errors.unknown(data, MATCH_FIELDS, ())
    match_id = errors.ident(data, "match_id", ())
    mode = errors.ident(data, "mode", ())
    map_name = errors.ident(data, "map", ())
    started = errors.moment(data, "started_at")
    ended = errors.moment(data, "ended_at")
    if started and ended:
        if ended < started:
            errors.add(("ended_at",), "must not be before started_at")
        elif ended - started > MAX_MATCH_DURATION:
            errors.add(("ended_at",), f"match may last at most {MAX_MATCH_DURATION}")
        if now is not None and ended > now + MAX_CLOCK_SKEW:
            errors.add(("ended_at",), "must not be in the future")
        if started < EARLIEST:
            errors.add(("started_at",), f"must not be before {EARLIEST.date()}")
    players = _players(data.get("players"), errors)
    ids = _reported_ids(data.get("players"))
    # Unknown times or players are already reported: do not blame every event for them.
    duration = (
        (ended - started).total_seconds() if started and ended and ended >= started else math.inf
    )
    events = _events(data.get("events"), ids, duration, errors)
    if errors.items:
        raise InvalidMatch(errors.items)
    assert started is not None and ended is not None
    return Match(match_id, mode, map_name, started, ended, tuple(players), tuple(events))


def _players(raw: Any, errors: _Errors) -> list[PlayerLine]:
    if raw is None:
        errors.add(("players",), "field required", "missing")
        return []
    if not isinstance(raw, list):
        errors.add(("players",), "must be a list", "list_type")
        return []
    if not 1 <= len(raw) <= MAX_PLAYERS:
        errors.add(("players",), f"must hold 1 to {MAX_PLAYERS} players")
        return []
    players: list[PlayerLine] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        loc: Loc = ("players", i)
        if not isinstance(item, Mapping):
            errors.add(loc, "must be an object", "dict_type")
            continue
        player = _player(item, loc, errors)
        if player is None:
            continue
        if player.player_id in seen:
            errors.add((*loc, "player_id"), f"duplicate player {player.player_id!r}")
            continue
        seen.add(player.player_id)
        players.append(player)
    return players


def _reported_ids(raw: Any) -> set[str] | None:
    """The player ids as reported, players with errors included; ``None``: no usable list."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_PLAYERS:
        return None
    return {
        p["player_id"]
        for p in raw
        if isinstance(p, Mapping) and isinstance(p.get("player_id"), str)
    }


def _player(item: Mapping[str, Any], loc: Loc, errors: _Errors) -> PlayerLine | None:
    before = len(errors.items)
    errors.unknown(item, PLAYER_FIELDS, loc)
    player_id = errors.ident(item, "player_id", loc)
    team = errors.ident(item, "team", loc, required=False) or None
    outcome_raw = item.get("outcome")
    outcome = Outcome.DNF
    allowed = [o.value for o in Outcome]
    if outcome_raw is None:
        errors.add((*loc, "outcome"), "field required", "missing")
    elif outcome_raw not in allowed:
        errors.add((*loc, "outcome"), f"must be one of {', '.join(allowed)}", "enum")
    else:
        outcome = Outcome(outcome_raw)
    counters = {
        name: errors.count(item.get(name, 0), (*loc, name), COUNTER_MAX[name])
        for name in REPORTED_COUNTERS
    }
    failed = {e.loc for e in errors.items[before:]}
    if counters["shots_hit"] > counters["shots_fired"] and (*loc, "shots_fired") not in failed:
        errors.add((*loc, "shots_hit"), "must not exceed shots_fired")
    if counters["headshots"] > counters["kills"] and (*loc, "kills") not in failed:
        errors.add((*loc, "headshots"), "must not exceed kills")
    medals = _named(item.get("medals"), (*loc, "medals"), errors)
    weapons = _weapons(item.get("weapons"), (*loc, "weapons"), errors)
    if len(errors.items) > before:
        return None
    return PlayerLine(player_id, outcome, counters, team, medals, weapons)


def _named(raw: Any, loc: Loc, errors: _Errors) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        errors.add(loc, "must be an object of name -> count", "dict_type")
        return {}
    if len(raw) > MAX_NAMED_ENTRIES:
        errors.add(loc, f"must hold at most {MAX_NAMED_ENTRIES} entries")
        return {}
    out: dict[str, int] = {}
    for name, value in raw.items():
        problem = id_problem(name)
        if problem:
            errors.add((*loc, str(name)[:64]), f"name {problem}")
            continue
        out[name] = errors.count(value, (*loc, name), MEDAL_MAX)
    return out


def _weapons(raw: Any, loc: Loc, errors: _Errors) -> dict[str, WeaponLine]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        errors.add(loc, "must be an object of weapon -> {kills, headshots}", "dict_type")
        return {}
    if len(raw) > MAX_NAMED_ENTRIES:
        errors.add(loc, f"must hold at most {MAX_NAMED_ENTRIES} entries")
        return {}
    out: dict[str, WeaponLine] = {}
    for name, value in raw.items():
        problem = id_problem(name)
        if problem:
            errors.add((*loc, str(name)[:64]), f"name {problem}")
            continue
        if not isinstance(value, Mapping):
            errors.add((*loc, name), "must be an object {kills, headshots}", "dict_type")
            continue
        errors.unknown(value, WEAPON_FIELDS, (*loc, name))
        before = len(errors.items)
        kills = errors.count(value.get("kills", 0), (*loc, name, "kills"), COUNTER_MAX["kills"])
        kills_valid = len(errors.items) == before
        heads = errors.count(
            value.get("headshots", 0), (*loc, name, "headshots"), COUNTER_MAX["headshots"]
        )
        if heads > kills and kills_valid:
            errors.add((*loc, name, "headshots"), "must not exceed kills")
        out[name] = WeaponLine(kills, heads)
    return out


def _events(
    raw: Any, players: set[str] | None, duration: float, errors: _Errors
) -> list[MatchEvent]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.add(("events",), "must be a list", "list_type")
        return []
    if len(raw) > MAX_EVENTS:
        errors.add(("events",), f"must hold at most {MAX_EVENTS} events")
        return []
    events: list[MatchEvent] = []
    weapons: dict[str, set[str]] = {}  # per killer: a player's line holds as many as posted
    for i, item in enumerate(raw):
        loc: Loc = ("events", i)
        if not isinstance(item, Mapping):
            errors.add(loc, "must be an object", "dict_type")
            continue
        event = _event(item, loc, players, duration, errors)
        if event is None:
            continue
        if event.type == "kill" and event.killer and event.weapon:
            named = weapons.setdefault(event.killer, set())
            if event.weapon not in named and len(named) >= MAX_NAMED_ENTRIES:
                errors.add(
                    (*loc, "weapon"),
                    f"{event.killer!r} kills with more than {MAX_NAMED_ENTRIES} weapons",
                )
                continue
            named.add(event.weapon)
        events.append(event)
    return events


def _event(
    item: Mapping[str, Any],
    loc: Loc,
    players: set[str] | None,
    duration: float,
    errors: _Errors,
) -> MatchEvent | None:
    before = len(errors.items)
    errors.unknown(item, EVENT_FIELDS, loc)
    t = item.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        errors.add((*loc, "t"), "must be a number of seconds since the start", "float_type")
        t = 0.0
    elif not 0 <= t <= duration + MAX_CLOCK_SKEW.total_seconds():
        errors.add((*loc, "t"), "must lie within the match")
    kind = errors.ident(item, "type", loc)
    named: dict[str, str | None] = {}
    for key in ("killer", "victim"):
        value = errors.ident(item, key, loc, required=kind == "kill") or None
        if value is not None and players is not None and value not in players:
            errors.add((*loc, key), f"{value!r} is not a player of this match")
        named[key] = value
    weapon = errors.ident(item, "weapon", loc, required=kind == "kill") or None
    headshot = item.get("headshot", False)
    if not isinstance(headshot, bool):
        errors.add((*loc, "headshot"), "must be true or false", "bool_type")
    if len(errors.items) > before:
        return None
    return MatchEvent(float(t), kind, named["killer"], named["victim"], weapon, bool(headshot))
