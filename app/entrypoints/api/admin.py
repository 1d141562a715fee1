"""Operator endpoints (role ``admin``): sagas, re-drive, dead letters, voiding a match."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.application.operations import Operations
from app.domain.saga import SagaState
from app.entrypoints.api.body import StrictJSONRoute
from app.entrypoints.api.deps import require
from app.entrypoints.api.matches import MatchId
from app.entrypoints.api.schemas import DeadLetters, ReplayReport, Requested, SagaList, errors
from app.settings import Role

QueueName = Literal["matches", "player-updates"]


def get_operations(request: Request) -> Operations:
    """The ``Operations`` the app was created with."""
    operations: Operations = request.app.state.operations
    return operations


OperationsDep = Annotated[Operations, Depends(get_operations)]
# How many a list answers at most: the same bound for every admin list.
Limit = Annotated[int, Query(ge=1, le=1000)]
admin = [Depends(require(Role.ADMIN))]
# Strict: a malformed body is a 400 naming the fault, as on POST /v1/matches.
router = APIRouter(
    prefix="/v1/admin", tags=["admin"], dependencies=admin, route_class=StrictJSONRoute
)
matches_router = APIRouter(
    prefix="/v1/matches", tags=["matches"], dependencies=admin, route_class=StrictJSONRoute
)


class Invalidation(BaseModel):
    """Why the match is voided (kept in the saga log)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=200, examples=["cheating confirmed by review #118"])


class Replay(BaseModel):
    """Which dead letters to replay: every one of the queue(s), or those ids."""

    model_config = ConfigDict(extra="forbid")
    queue: QueueName | None = Field(None, description="Both queues when omitted.")
    message_ids: list[Annotated[str, Field(min_length=1, max_length=300)]] | None = Field(
        None, max_length=1000, description="Only these (from GET /v1/admin/deadletters)."
    )


@router.get(
    "/sagas",
    summary="Sagas by state (unfinished ones by default)",
    response_model=SagaList,
    responses=errors(401, 403, 503),
)
async def list_sagas(
    operations: OperationsDep,
    state: Annotated[SagaState | None, Query(description="Any saga state.")] = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Open states come from the open-saga index, oldest first; finished ones from a scan."""
    return {"sagas": await operations.list_sagas(state, limit)}


@router.post(
    "/sagas/{match_id}/redrive",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Re-drive a saga: retry a stuck saga's dead players, or move a stalled one on",
    response_model=Requested,
    responses=errors(401, 403, 404, 409, 503, e404="No such match.", e409="It is finished."),
)
async def redrive(match_id: MatchId, operations: OperationsDep) -> dict[str, Any]:
    """Queued for the worker; watch ``GET /v1/matches/{id}``."""
    return await operations.redrive(match_id)


@router.get(
    "/deadletters",
    summary="Dead letters of the saga queues, without taking them",
    response_model=DeadLetters,
    responses=errors(401, 403, 503),
)
async def dead_letters(
    operations: OperationsDep,
    queue: Annotated[QueueName | None, Query(description="Both queues when omitted.")] = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Each with its reason, description and the match (and player) it is about."""
    return {"deadletters": await operations.dead_letters(queue, limit)}


@router.post(
    "/deadletters/replay",
    summary="Replay dead letters",
    response_model=ReplayReport,
    responses=errors(400, 401, 403, 413, 503),
)
async def replay(
    operations: OperationsDep, request: Annotated[Replay | None, Body()] = None
) -> dict[str, Any]:
    """A dead player's step re-drives its saga; other messages go back to their queue.
    Dead letters about sagas that moved on since are dropped and listed as such."""
    request = request or Replay()
    report = await operations.replay(request.queue, request.message_ids)
    return report.as_dict()


@matches_router.post(
    "/{match_id}/invalidate",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Void a match: subtract it from every player (backward recovery)",
    response_model=Requested,
    responses={
        200: {"model": Requested, "description": "Already compensated: nothing to do."},
        202: {"description": "The compensation saga is queued."},
        **errors(400, 401, 403, 404, 409, 413, 503, e404="No such match."),
    },
)
async def invalidate(
    match_id: MatchId,
    response: Response,
    operations: OperationsDep,
    body: Annotated[Invalidation | None, Body()] = None,
) -> dict[str, Any]:
    """Players are reverted latest-applied first; a pending player is voided so that a
    late retry changes nothing. The saga ends ``compensated``."""
    result = await operations.invalidate(match_id, (body or Invalidation()).reason)
    if result["requested"] is None:
        response.status_code = status.HTTP_200_OK
    return result
