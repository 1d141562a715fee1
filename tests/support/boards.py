"""For the leaderboards' tests: a rated match of one player, and waiting for boards that
are eventually consistent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from app.domain.model import Outcome
from app.domain.ratings import RatingChange, RatingDelta, SkillRating
from app.domain.stats import StatDelta, delta_counters

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = TypeVar("T")


def rated(player_id: str, n: int) -> StatDelta:
    """Match ``m{n}`` of ``player_id`` in slayer: ``n`` kills, 2 deaths, a win when ``n``
    is odd, and a rating change of ``0.5 n`` in mu."""
    change = RatingChange(SkillRating(), RatingDelta(mu=0.5 * n, sigma=-0.25, matches=1))
    outcome = Outcome.WIN if n % 2 else Outcome.LOSS
    return StatDelta(
        match_id=f"m{n}",
        player_id=player_id,
        mode="slayer",
        map="haven",
        ended_at=T0 + timedelta(minutes=n),
        outcome=outcome,
        team="red",
        counters=delta_counters(outcome, {"kills": n, "deaths": 2}),
        rating=change,
    )


async def eventually(check: Callable[[], Awaitable[T]], timeout_s: float = 30.0) -> T:
    """``check()``'s result once it stops failing; its last failure after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return await check()
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
