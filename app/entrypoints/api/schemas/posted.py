"""The match a client posts, as documented (``app.domain.validation`` judges it)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.domain.validation import (
    COUNTER_MAX,
    MAX_EVENTS,
    MAX_NAMED_ENTRIES,
    MAX_PLAYERS,
    MEDAL_MAX,
)
from app.entrypoints.api.schemas.fields import Id, Moment, count_field


class WeaponIn(BaseModel):
    """Kills and headshots with one weapon."""

    model_config = ConfigDict(extra="forbid")
    kills: int = count_field("kills")
    headshots: int = count_field("headshots")


class PlayerIn(BaseModel):
    """One player's line; the counters are authoritative. Missing counters are zero."""

    model_config = ConfigDict(extra="forbid")
    player_id: Id
    team: Id | None = None
    outcome: Literal["win", "loss", "tie", "dnf"]
    score: int = count_field("score")
    kills: int = count_field("kills")
    deaths: int = count_field("deaths")
    assists: int = count_field("assists")
    headshots: int = Field(0, ge=0, le=COUNTER_MAX["headshots"], description="<= kills")
    shots_fired: int = count_field("shots_fired")
    shots_hit: int = Field(0, ge=0, le=COUNTER_MAX["shots_hit"], description="<= shots_fired")
    damage_dealt: int = count_field("damage_dealt")
    time_played_s: int = count_field("time_played_s")
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
