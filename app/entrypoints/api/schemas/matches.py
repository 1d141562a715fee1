"""Answers about matches: accepted, and a match's detail with its saga log."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.domain.saga import SagaState
from app.entrypoints.api.schemas.players import RatingChangeOut


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
    rating: RatingChangeOut | None = Field(
        description="The player's rating before and after the match, as the Game actor "
        "computed it (null: not rated, or the saga has not started)."
    )


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
