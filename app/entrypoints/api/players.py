"""``/v1/players``: service records and match history."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response, status

from app.application.ports import HistoryEntry
from app.domain.errors import NotFound
from app.domain.ids import ID_PATTERN, MAX_ID_LENGTH
from app.entrypoints.api.deps import ServiceDep, read_caller
from app.entrypoints.api.schemas import (
    CONDITIONAL,
    HistoryPageOut,
    IdPath,
    ModeRecordOut,
    ServiceRecordOut,
    errors,
)

router = APIRouter(prefix="/v1/players", tags=["players"], dependencies=[Depends(read_caller)])
PlayerId = IdPath
MAX_PAGE = 25


def etag_of(body: Any) -> str:
    """A strong validator of a JSON body: equal bodies, equal tags."""
    # orjson: a full record's JSON in a ninth of json's time (docs/performance.md). The
    # tag of the same record may differ from an older version's (a float's notation):
    # across an upgrade, a client's cached copy is sent again once.
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return '"' + hashlib.sha256(canonical).hexdigest()[:32] + '"'


def matches_etag(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison of ``If-None-Match`` with ``etag``."""
    if if_none_match is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def conditional(body: Any, if_none_match: str | None, response: Response) -> Any:
    """``body`` with its ``ETag``, or a 304 without a body when the client holds it."""
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if matches_etag(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    response.headers.update(headers)
    return body


@router.get(
    "/{player_id}/stats",
    summary="A player's service record (or one mode's block of it)",
    response_model=ServiceRecordOut | ModeRecordOut,
    responses={
        **CONDITIONAL,
        **errors(401, 403, 404, 429, 503, e404="The player has no matches."),
    },
)
async def get_stats(
    player_id: PlayerId,
    service: ServiceDep,
    response: Response,
    mode: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_ID_LENGTH,
            pattern=ID_PATTERN,
            description="Only this mode's counters and ratios (e.g. `slayer`).",
        ),
    ] = None,
    if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
) -> Any:
    """Lifetime totals, ratios, medals, weapons and per-mode blocks. Conditional: send
    the ETag back in ``If-None-Match`` and an unchanged record answers 304, no body."""
    return conditional(await service.player_stats(player_id, mode), if_none_match, response)


@router.get(
    "/{player_id}/matches",
    summary="A player's match history, newest first",
    response_model=HistoryPageOut,
    responses=errors(400, 401, 403, 404, 429, 503, e404="The player has no matches."),
)
async def get_matches(
    player_id: PlayerId,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Matches per page.")] = 10,
    continuation: Annotated[
        str | None, Query(max_length=512, description="From the previous page.")
    ] = None,
) -> dict[str, Any]:
    """One page of history; pass ``continuation`` back for the next page. Pages stay
    consistent while new matches arrive: a page never repeats or skips a match because of
    a newer one (newer matches appear on a fresh first page)."""
    try:
        page = await service.player_matches(player_id, limit, continuation)
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"continuation: {exc}") from None
    if not page.entries and continuation is None:
        raise NotFound(f"player {player_id!r} has no matches")
    return {
        "player_id": player_id,
        "matches": [history_line(e) for e in page.entries],
        "continuation": page.continuation,
    }


def history_line(entry: HistoryEntry) -> dict[str, Any]:
    """One match of a player's history as served: its delta, rating change made public."""
    rating = entry.delta.rating
    return {**entry.delta.to_dict(), "void": entry.void, "rating": rating and rating.public()}
