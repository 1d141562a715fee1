"""Answers about leaderboards: a page of one board."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.domain.leaderboards import STATS


class BoardEntryOut(BaseModel):
    """One line of a board."""

    rank: int = Field(
        ge=1, description="1 is best; tied values share a rank (competition ranking: 1, 2, 2, 4)."
    )
    player_id: str
    value: float = Field(description="The player's value of the board's stat in the mode.")


class BoardPageOut(BaseModel):
    """A page of a mode's board of one stat, best first (ties by player id)."""

    mode: str
    stat: str = Field(description=f"One of {', '.join(STATS)}.")
    entries: list[BoardEntryOut]
    size: int = Field(ge=0, description="Players on the board.")
    continuation: str | None = Field(
        None, description="Pass back as `continuation` for the next page; null: no more."
    )
