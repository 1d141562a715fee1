"""``/v1/leaderboards``: the top players of a mode by one stat, paged."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status

from app.application.ports import Leaderboards
from app.domain.errors import PoolUnavailable
from app.domain.leaderboards import MAX_PAGE_LIMIT, InvalidContinuation
from app.entrypoints.api.deps import read_caller
from app.entrypoints.api.players import conditional
from app.entrypoints.api.schemas import CONDITIONAL, IdPath, errors
from app.entrypoints.api.schemas.leaderboards import BoardPageOut

router = APIRouter(
    prefix="/v1/leaderboards", tags=["leaderboards"], dependencies=[Depends(read_caller)]
)


class Stat(StrEnum):
    """What a board ranks by (the domain's ``STATS``: a test holds them equal)."""

    rating = "rating"
    kills = "kills"
    wins = "wins"
    kd = "kd"


def get_leaderboards(request: Request) -> Leaderboards:
    """The ``Leaderboards`` the app was created with (503 without them)."""
    boards: Leaderboards | None = request.app.state.leaderboards
    if boards is None:
        raise PoolUnavailable("this api process has no leaderboards")
    return boards


BoardsDep = Annotated[Leaderboards, Depends(get_leaderboards)]


@router.get(
    "/{mode}",
    summary="A mode's leaderboard of one stat, best first",
    response_model=BoardPageOut,
    responses={**CONDITIONAL, **errors(400, 401, 403, 422, 429, 503)},
)
async def get_board(
    mode: IdPath,
    boards: BoardsDep,
    response: Response,
    stat: Annotated[Stat, Query(description="What the players are ranked by.")] = Stat.rating,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_LIMIT, description="Entries per page.")] = 25,
    continuation: Annotated[
        str | None, Query(max_length=512, description="From the previous page.")
    ] = None,
    if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
) -> Any:
    """One page of the board; pass ``continuation`` back for the next. ``rating`` is the
    displayed skill (mu - 3 sigma) of rated players; ``kd`` kills over deaths (at least
    one). Eventually consistent: a match shows within seconds of its saga. Pages resume
    after the last entry served, so a player whose value does not change while you page
    is listed exactly once. A mode nobody played has an empty board. Conditional like
    the service record (``ETag``, ``If-None-Match``)."""
    try:
        page = await boards.page(mode, stat.value, limit, continuation)
    except InvalidContinuation as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"continuation: {exc}") from None
    body = {
        "mode": page.mode,
        "stat": page.stat,
        "entries": [
            {"rank": e.rank, "player_id": e.player_id, "value": e.value} for e in page.entries
        ],
        "size": page.size,
        "continuation": page.continuation,
    }
    return conditional(body, if_none_match, response)
