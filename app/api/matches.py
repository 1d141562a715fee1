"""``/v1/matches``: ingest and match detail."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status

from app.api.deps import ServiceDep, require
from app.domain.ids import ID_RULE, MAX_ID_LENGTH
from app.settings import Role

router = APIRouter(prefix="/v1/matches", tags=["matches"])
MatchId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description=ID_RULE,
    ),
]


async def _read_body(request: Request) -> Any:
    """The JSON body, refusing more than the configured size before reading it all."""
    limit: int = request.app.state.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {limit} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"body is not valid JSON: {exc}") from None


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(require(Role.INGEST))],
    summary="Accept a finished match",
    responses={
        200: {"description": "The same match was accepted before (identical body)."},
        202: {"description": "Accepted; its saga runs. `Location` names the match."},
        400: {"description": "The body is not JSON."},
        409: {"description": "This match id was accepted with a different body."},
        413: {"description": "The body is too large."},
        422: {"description": "A field breaks a rule; `detail[].loc` names it."},
    },
)
async def post_match(request: Request, response: Response, service: ServiceDep) -> dict[str, Any]:
    """Validate, store and publish a match; its saga updates every player."""
    submitted = await service.submit_match(await _read_body(request))
    location = f"/v1/matches/{submitted.match_id}"
    response.headers["Location"] = location
    if not submitted.created:
        response.status_code = status.HTTP_200_OK
    return {"match_id": submitted.match_id, "state": submitted.state, "location": location}


@router.get(
    "/{match_id}",
    dependencies=[Depends(require(Role.READ))],
    summary="A match, its saga state, per-player status and saga log",
    responses={404: {"description": "No such match."}},
)
async def get_match(match_id: MatchId, service: ServiceDep) -> dict[str, Any]:
    """The match summary, its saga and time to consistency."""
    return await service.match(match_id)
