"""The HTTP API: ``create_app`` builds it around services made elsewhere."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI

from app.api import admin, errors, health, matches, players, pools
from app.operations import Operations
from app.ports import PoolAdmin
from app.services import StatsService
from app.settings import Settings

Check = Callable[[], Awaitable[object]]


def create_app(
    settings: Settings,
    service: StatsService,
    operations: Operations,
    readiness: Mapping[str, Check] | None = None,
    pool_admin: PoolAdmin | None = None,
) -> FastAPI:
    """The FastAPI app over ``service``; ``readiness`` checks back ``/readyz``; without
    ``pool_admin`` the pool endpoints answer 503."""
    app = FastAPI(
        title="statsaga",
        version="0.1.0",
        description="Game stats: matches in, service records out, sagas in between.",
    )
    app.state.service = service
    app.state.operations = operations
    app.state.pools = pool_admin
    app.state.api_keys = dict(settings.api_keys)
    app.state.max_body_bytes = settings.max_body_bytes
    app.state.readiness = dict(readiness or {})
    errors.install(app)
    app.include_router(matches.router)
    app.include_router(admin.matches_router)
    app.include_router(players.router)
    app.include_router(admin.router)
    app.include_router(pools.router)
    app.include_router(health.router)
    return app
