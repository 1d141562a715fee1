"""Answers about players: service records per mode and match history pages."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.domain.stats import MAX_RECORD_MEDALS, MAX_RECORD_MODES, MAX_RECORD_WEAPONS, OTHER


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


class RatingOut(BaseModel):
    """A skill rating (OpenSkill, Plackett-Luce): the model's estimate ``mu`` and its
    uncertainty ``sigma``; the displayed ``skill`` is the conservative ``mu - 3 sigma``,
    0 for a new player, rising as the rating grows sure."""

    skill: float
    mu: float
    sigma: float
    matches: int = Field(description="Matches this rating rated.")


class RatingChangeOut(BaseModel):
    """A player's rating in one match: read before it was rated, and after its delta."""

    before: RatingOut
    after: RatingOut
    skill_change: float


class StandingOut(BaseModel):
    """Where the player stands on one of the mode's leaderboards."""

    rank: int = Field(description="1 is the best; tied values share a rank.")
    percentile: float = Field(description="The share of the board's players below, in %.")
    value: float


class ModeTotals(Totals):
    """A mode's counters, ratios and rating (null: no rated match in the mode)."""

    rating: RatingOut | None
    standing: dict[str, StandingOut] | None = Field(
        None,
        description="Rank and percentile on each of the mode's leaderboards (rating, kills, "
        "wins, kd) the player is on; eventually consistent (seconds behind the record), and "
        "null when the leaderboards did not answer in time.",
    )


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
    modes: dict[str, ModeTotals] = Field(
        description=_OVERFLOW.format(n=MAX_RECORD_MODES, kind="modes")
    )
    first_played: str | None
    last_played: str | None
    ratings: dict[str, RatingOut] = Field(
        description="Each rated mode's skill rating (as in the mode's block)."
    )


class ModeRecordOut(ModeTotals, ModeHead):
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
    rating: RatingChangeOut | None = Field(
        description="The player's rating before and after the match (null: not rated)."
    )


class HistoryPageOut(BaseModel):
    """A page of history, newest first."""

    player_id: str
    matches: list[HistoryLine]
    continuation: str | None = Field(
        description="Pass back as `continuation` for the next page; null on the last."
    )
