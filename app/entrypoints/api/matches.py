"""``/v1/matches``: ingest and match detail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response, status

from app.entrypoints.api.body import read_json
from app.entrypoints.api.deps import ServiceDep, ingest_caller, read_caller
from app.entrypoints.api.players import matches_etag
from app.entrypoints.api.schemas import (
    CONDITIONAL,
    Accepted,
    Duplicate,
    IdPath,
    MatchDetail,
    errors,
)

router = APIRouter(prefix="/v1/matches", tags=["matches"])
MatchId = IdPath


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(ingest_caller)],
    summary="Accept a finished match",
    response_model=Accepted,
    responses={
        200: {"model": Accepted, "description": "Accepted before with this very body."},
        202: {
            "description": "Accepted; its saga runs.",
            "headers": {"Location": {"description": "The match", "schema": {"type": "string"}}},
        },
        409: {"model": Duplicate, "description": "This match id has another body."},
        **errors(400, 401, 403, 413, 422, 429, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MatchIn"}}},
        }
    },
)
async def post_match(request: Request, response: Response, service: ServiceDep) -> dict[str, Any]:
    """Validate, store and publish a match; its saga updates every player. Every broken
    rule is reported at once, and nothing is stored or published for a refused match."""
    submitted = await service.submit_match(await read_json(request))
    location = f"/v1/matches/{submitted.match_id}"
    response.headers["Location"] = location
    if not submitted.created:
        response.status_code = status.HTTP_200_OK
    return {"match_id": submitted.match_id, "state": submitted.state, "location": location}


@router.get(
    "/{match_id}",
    dependencies=[Depends(read_caller)],
    summary="A match: teams, lines, saga state and timeline, time to consistency",
    response_model=MatchDetail,
    responses={
        **CONDITIONAL,
        **errors(401, 403, 404, 429, 503, e404="No such match."),
    },
)
async def get_match(
    match_id: MatchId,
    service: ServiceDep,
    response: Response,
    if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
) -> Any:
    """The match with each player's line and saga status, the saga log with each step's
    offset since acceptance, and the time from acceptance to consistency. Conditional:
    send the ETag back in ``If-None-Match``; until the saga moves on, 304, no body (a
    page polling a running saga costs one table read a poll)."""
    detail = await service.match(match_id, lambda tag: matches_etag(if_none_match, tag))
    headers = {"ETag": detail.etag, "Cache-Control": "no-cache"}
    if detail.body is None:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    response.headers.update(headers)
    return detail.body
