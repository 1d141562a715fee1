"""``/v1/players``: service records and match history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status

from app.api.deps import ServiceDep, require
from app.domain.ids import ID_RULE, MAX_ID_LENGTH
from app.settings import Role

router = APIRouter(
    prefix="/v1/players", tags=["players"], dependencies=[Depends(require(Role.READ))]
)
PlayerId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description=ID_RULE,
    ),
]
MAX_PAGE = 25


@router.get(
    "/{player_id}/stats",
    summary="A player's service record",
    responses={404: {"description": "The player has no matches."}},
)
async def get_stats(player_id: PlayerId, service: ServiceDep) -> dict[str, Any]:
    """Lifetime totals, ratios, medals, weapons and per-mode blocks."""
    return await service.player_stats(player_id)


@router.get(
    "/{player_id}/matches",
    summary="A player's match history, newest first",
    responses={400: {"description": "The continuation token is not one this API issued."}},
)
async def get_matches(
    player_id: PlayerId,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 10,
    continuation: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    """One page of history; pass ``continuation`` back for the next page."""
    try:
        page = await service.player_matches(player_id, limit, continuation)
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"continuation: {exc}") from None
    return {
        "player_id": player_id,
        "matches": [{**e.delta.to_dict(), "void": e.void} for e in page.entries],
        "continuation": page.continuation,
    }
