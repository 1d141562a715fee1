"""The API's documented shapes: the match a client posts, and every answer and error.

The match model documents the body only: ``app.domain.validation`` stays the one judge of
a posted match (it reports every problem at once and also re-reads archived payloads); its
bounds are imported here, so the schema cannot drift from the rules."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from app.api.body import MAX_DEPTH
from app.api.errors import MAX_ERRORS
from app.domain.ids import ID_PATTERN, ID_RULE, MAX_ID_LENGTH
from app.domain.saga import SagaState
from app.domain.stats import MAX_RECORD_MEDALS, MAX_RECORD_MODES, MAX_RECORD_WEAPONS, OTHER
from app.domain.validation import (
    COUNTER_MAX,
    DATE_TIME,
    MAX_EVENTS,
    MAX_NAMED_ENTRIES,
    MAX_PLAYERS,
    MEDAL_MAX,
)

Id = Annotated[
    str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description=ID_RULE)
]
# A match or player id in a path: the same rule, checked before any handler runs.
IdPath = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description=ID_RULE)
]
Moment = Annotated[str, Field(pattern=DATE_TIME, json_schema_extra={"format": "date-time"})]


def _count(name: str) -> Any:
    return Field(0, ge=0, le=COUNTER_MAX[name])


# ---- the posted match --------------------------------------------------------------------


class WeaponIn(BaseModel):
    """Kills and headshots with one weapon."""

    model_config = ConfigDict(extra="forbid")
    kills: int = _count("kills")
    headshots: int = _count("headshots")


class PlayerIn(BaseModel):
    """One player's line; the counters are authoritative. Missing counters are zero."""

    model_config = ConfigDict(extra="forbid")
    player_id: Id
    team: Id | None = None
    outcome: Literal["win", "loss", "tie", "dnf"]
    score: int = _count("score")
    kills: int = _count("kills")
    deaths: int = _count("deaths")
    assists: int = _count("assists")
    headshots: int = Field(0, ge=0, le=COUNTER_MAX["headshots"], description="<= kills")
    shots_fired: int = _count("shots_fired")
    shots_hit: int = Field(0, ge=0, le=COUNTER_MAX["shots_hit"], description="<= shots_fired")
    damage_dealt: int = _count("damage_dealt")
    time_played_s: int = _count("time_played_s")
    medals: dict[Id, Annotated[int, Field(ge=0, le=MEDAL_MAX)]] = Field(
        default_factory=dict, max_length=MAX_NAMED_ENTRIES
    )
    weapons: dict[Id, WeaponIn] = Field(default_factory=dict, max_length=MAX_NAMED_ENTRIES)


class EventIn(BaseModel):
    """One raw telemetry event; ``kill`` events need ``killer``, ``victim`` and ``weapon``,
    which must be players (and a weapon name) of this match. One player's kills may name
    at most 64 different weapons in a match."""

    model_config = ConfigDict(extra="forbid")
    t: float = Field(ge=0, description="Seconds since the start; within the match.")
    type: Id
    killer: Id | None = None
    victim: Id | None = None
    weapon: Id | None = None
    headshot: bool = False


class MatchIn(BaseModel):
    """A finished match. ``ended_at`` follows ``started_at`` by at most 6 hours and is not
    in the future; player ids are unique. Unknown fields are refused by name."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "match_id": "m-8f3a",
                    "mode": "slayer",
                    "map": "haven",
                    "started_at": "2026-11-21T18:00:00Z",
                    "ended_at": "2026-11-21T18:12:00Z",
                    "players": [
                        {
                            "player_id": "p-1",
                            "team": "red",
                            "outcome": "win",
                            "score": 1500,
                            "kills": 12,
                            "deaths": 7,
                            "assists": 3,
                            "headshots": 5,
                            "shots_fired": 300,
                            "shots_hit": 120,
                            "damage_dealt": 3100,
                            "time_played_s": 720,
                            "medals": {"double_kill": 2},
                            "weapons": {"battle_rifle": {"kills": 8, "headshots": 4}},
                        },
                        {
                            "player_id": "p-2",
                            "team": "blue",
                            "outcome": "loss",
                            "kills": 7,
                            "deaths": 12,
                        },
                    ],
                    "events": [
                        {
                            "t": 31.5,
                            "type": "kill",
                            "killer": "p-1",
                            "victim": "p-2",
                            "weapon": "battle_rifle",
                            "headshot": True,
                        }
                    ],
                }
            ]
        },
    )
    match_id: Id
    mode: Id
    map: Id
    started_at: Moment
    ended_at: Moment
    players: list[PlayerIn] = Field(min_length=1, max_length=MAX_PLAYERS)
    events: list[EventIn] = Field(default_factory=list, max_length=MAX_EVENTS)


# ---- errors ------------------------------------------------------------------------------


class Problem(BaseModel):
    """What went wrong, in words."""

    detail: str = Field(examples=["player 'p-404' has no matches"])


class FieldProblem(BaseModel):
    """One broken rule; ``loc`` is the path to the field, starting with where it came
    from (``body``, ``path``, ``query``)."""

    loc: list[str | int] = Field(examples=[["body", "players", 0, "kills"]])
    msg: str = Field(examples=["must be <= 10000"])
    type: str = Field(examples=["value_error"])


class Invalid(BaseModel):
    """The broken rules of the request, each naming its field (a bounded number)."""

    detail: list[FieldProblem] = Field(max_length=MAX_ERRORS)
    more_errors: int | None = Field(
        None, ge=1, description="Broken rules left out of `detail` (only when there were any)."
    )


class Duplicate(Problem):
    """The match id was accepted before with another body."""

    match_id: str


# The answers of a read that honours If-None-Match (a service record, a match's detail).
CONDITIONAL: dict[int | str, dict[str, Any]] = {
    200: {"headers": {"ETag": {"description": "Send back in If-None-Match"}}},
    304: {"description": "Not modified since the ETag in If-None-Match."},
}


def errors(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error codes, with the body each one has."""
    plain = {
        400: "The request is malformed: a body that is not a UTF-8 JSON object, or that "
        "breaks a rule of strict JSON (duplicate keys, NaN or Infinity, integers beyond 64 "
        f"bits, lone surrogates, nesting deeper than {MAX_DEPTH}); or a token this API "
        "never issued. `detail` says which.",
        401: "No API key, or an unknown one (`Authorization: Bearer <key>`).",
        403: "The key's role may not do this.",
        404: "No such resource; the body says which.",
        409: "Conflicts with what is stored.",
        413: "The body is larger than the configured limit (checked before parsing).",
        422: f"A field breaks a rule; `detail[].loc` names it. At most {MAX_ERRORS} are "
        "listed; `more_errors` counts the rest.",
        429: "Too many requests from this key or client address (or too many unknown keys "
        "from this address); `Retry-After` says when to try again.",
        503: "A dependency is unavailable; `Retry-After` says when to try again.",
    }
    out: dict[int | str, dict[str, Any]] = {}
    if 401 in codes and 429 not in codes:
        codes = (*codes, 429)  # a key is checked: unknown keys are limited per address
    for code in codes:
        model: type[BaseModel] = Invalid if code == 422 else Problem
        out[code] = {"model": model, "description": described.get(f"e{code}", plain[code])}
        if code in (429, 503):
            out[code]["headers"] = {
                "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
            }
    return out


# ---- matches -----------------------------------------------------------------------------


class Accepted(BaseModel):
    """The match is stored and its saga is on its way."""

    match_id: str = Field(examples=["m-8f3a"])
    state: SagaState
    location: str = Field(examples=["/v1/matches/m-8f3a"])


class TeamOut(BaseModel):
    """A team's outcome and totals."""

    team: str
    outcome: str
    players: list[str]
    score: int
    kills: int
    deaths: int
    assists: int


class PlayerLineOut(BaseModel):
    """A player's line of the match (medals and weapons as aggregated from the events when
    the match has them) and how the saga's update of that player stands."""

    player_id: str
    team: str | None
    outcome: str
    counters: dict[str, int]
    medals: dict[str, int]
    weapons: dict[str, dict[str, int]]
    status: str = Field(description="pending, applied, retrying, dead, compensated, ...")
    attempts: int
    error: str | None


class LogEntryOut(BaseModel):
    """One step of the saga log; the event's own fields follow ``type``."""

    model_config = ConfigDict(extra="allow")
    seq: int
    at: str
    offset_s: float = Field(description="Seconds since the match was accepted.")
    type: str = Field(examples=["PlayerApplied"], description="The event.")


class MatchDetail(BaseModel):
    """A match: teams, lines, its saga, its timeline and how long consistency took."""

    match_id: str
    state: SagaState
    mode: str
    map: str
    started_at: str
    ended_at: str
    accepted_at: str
    finished_at: str | None
    time_to_consistency_s: float | None = Field(
        description="Accepted to every player updated (or compensated); null until then."
    )
    teams: list[TeamOut]
    players: list[PlayerLineOut]
    log: list[LogEntryOut] = Field(description="The saga log, oldest first: its timeline.")


# ---- players -----------------------------------------------------------------------------


class PlayerHead(BaseModel):
    """Whose record it is."""

    player_id: str


class ModeHead(PlayerHead):
    """Whose record, and of which mode."""

    mode: str


class Counts(BaseModel):
    """The counters of a service record (overall or of one mode)."""

    matches: int
    wins: int
    losses: int
    ties: int
    dnf: int
    score: int
    kills: int
    deaths: int
    assists: int
    headshots: int
    shots_fired: int
    shots_hit: int
    damage_dealt: int
    time_played_s: int


class Ratios(BaseModel):
    """Derived figures: kd = kills/max(deaths,1), kda = kills + assists/3 - deaths,
    accuracy = shots_hit/shots_fired, win_rate = wins/matches."""

    kd: float
    kda: float
    accuracy: float
    win_rate: float


# Pydantic orders fields from the last base to the first: the head, counters, ratios.
class Totals(Ratios, Counts):
    """Counters and their ratios."""


_OVERFLOW = (
    "A record keeps at most {n} {kind} by name (the first it met); the counts of any other "
    f"{{kind}} are summed under `{OTHER}`, so totals stay exact."
)


class ServiceRecordOut(Totals, PlayerHead):
    """A player's lifetime service record."""

    medals: dict[str, int] = Field(description=_OVERFLOW.format(n=MAX_RECORD_MEDALS, kind="medals"))
    weapons: dict[str, dict[str, int]] = Field(
        description=_OVERFLOW.format(n=MAX_RECORD_WEAPONS, kind="weapons")
    )
    modes: dict[str, Totals] = Field(description=_OVERFLOW.format(n=MAX_RECORD_MODES, kind="modes"))
    first_played: str | None
    last_played: str | None


class ModeRecordOut(Totals, ModeHead):
    """A player's record in one mode (``?mode=``); zeros for a mode never played."""


class HistoryLine(BaseModel):
    """One match in a player's history."""

    match_id: str
    player_id: str
    mode: str
    map: str
    ended_at: str
    outcome: str
    team: str | None
    counters: dict[str, int]
    medals: dict[str, int]
    weapons: dict[str, dict[str, int]]
    void: bool = Field(description="The match was voided by an operator.")


class HistoryPageOut(BaseModel):
    """A page of history, newest first."""

    player_id: str
    matches: list[HistoryLine]
    continuation: str | None = Field(
        description="Pass back as `continuation` for the next page; null on the last."
    )


# ---- operators ---------------------------------------------------------------------------


class SagaLine(BaseModel):
    """One saga as operators list them."""

    match_id: str
    state: SagaState
    accepted_at: str
    updated_at: str | None
    finished_at: str | None
    published: bool = Field(
        description="Its start message was delivered (the saga started) or published again "
        "by the outbox sweeper; the API's own publish is not recorded."
    )
    players: dict[str, int] = Field(description="How many players are in each status.")
    dead: list[str] = Field(description="Players whose update was dead-lettered.")


class SagaList(BaseModel):
    """Sagas, oldest first."""

    sagas: list[SagaLine]


class Requested(BaseModel):
    """What was asked of the saga (``null``: nothing needed doing)."""

    match_id: str
    state: SagaState
    requested: str | None


class DeadLetter(BaseModel):
    """A dead letter, with why it died and what it was about."""

    queue: str
    message_id: str
    subject: str
    reason: str | None
    description: str | None
    match_id: str | None
    player_id: str | None
    body: dict[str, Any]


class DeadLetters(BaseModel):
    """Dead letters, oldest first."""

    deadletters: list[DeadLetter]


class ReplayReport(BaseModel):
    """What a replay did with each dead letter it took."""

    replayed: list[dict[str, Any]]
    dropped: list[dict[str, Any]]


class PoolsOut(BaseModel):
    """The actor pools: placement version, sizes, each member's counters and node."""

    model_config = ConfigDict(extra="allow")
    version: int
    updated_at: str
    configured: dict[str, int | None]
    pools: dict[str, Any]
    last_resize: dict[str, Any] | None


# ---- health ------------------------------------------------------------------------------


class Alive(BaseModel):
    """The process serves HTTP."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """Each dependency's state: ``ok`` or what is wrong with it."""

    ready: bool
    checks: dict[str, str] = Field(examples=[{"storage": "ok", "bus": "ok", "ray": "ok"}])
