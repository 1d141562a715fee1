"""Operator endpoints for the actor pools (role ``admin``): look at them, resize them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from app.application.ports import PoolAdmin
from app.domain.errors import PoolUnavailable
from app.domain.placement import MAX_SIZE, PoolName, size_problem
from app.entrypoints.api.body import StrictJSONRoute
from app.entrypoints.api.deps import require
from app.entrypoints.api.schemas import PoolsOut, errors
from app.settings import Role

router = APIRouter(
    prefix="/v1/admin/pools",
    tags=["admin"],
    dependencies=[Depends(require(Role.ADMIN))],
    route_class=StrictJSONRoute,
)


def get_pools(request: Request) -> PoolAdmin:
    """The ``PoolAdmin`` the app was created with (503 without one)."""
    pools: PoolAdmin | None = request.app.state.pools
    if pools is None:
        raise PoolUnavailable("this api process is not connected to the actor pools")
    return pools


PoolsDep = Annotated[PoolAdmin, Depends(get_pools)]


class Resize(BaseModel):
    """The pool's new number of members."""

    model_config = ConfigDict(extra="forbid")
    size: int = Field(ge=1, le=max(MAX_SIZE.values()), examples=[6])


@router.get(
    "",
    summary="The actor pools: sizes, placement version, per-member counters",
    response_model=PoolsOut,
    responses=errors(401, 403, 503),
)
async def describe(pools: PoolsDep) -> dict[str, Any]:
    """Each PlayerShard with its active grains, activations, deactivations, queued and
    in-flight calls and the node it runs on; each GameActor with its saga calls; each
    BoardActor with its modes (each one's board sizes), snapshots and rebuilds."""
    return await pools.describe()


@router.put(
    "/{pool}",
    summary="Resize a pool while the service runs",
    response_model=PoolsOut,
    responses=errors(
        400,
        401,
        403,
        413,
        422,
        503,
        e422="Unknown pool, or a size out of bounds.",
        e503="The pools cannot be reached, or the resize failed.",
    ),
)
async def resize(pool: PoolName, body: Resize, pools: PoolsDep, request: Request) -> dict[str, Any]:
    """Growing starts the new members first; shrinking waits for the surplus members'
    calls, then stops them. Players (or matches) that move are served by their new
    member from then on; no update is lost or doubled. Answers once the resize is done,
    with the pools as they are then."""
    problem = size_problem(pool, body.size, request.app.state.max_pool_size)
    if problem:
        raise RequestValidationError(
            [{"loc": ("body", "size"), "msg": problem, "type": "value_error"}]
        )
    return await pools.resize(pool, body.size)
