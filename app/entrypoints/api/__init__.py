"""The HTTP API: ``create_app`` builds it around services made elsewhere."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.application.operations import Operations
from app.application.ports import Leaderboards, PoolAdmin
from app.application.services import StatsService
from app.domain.ratelimit import RateLimiter
from app.entrypoints.api import admin, errors, health, leaderboards, matches, players, pools, web
from app.entrypoints.api import metrics as metrics_routes
from app.entrypoints.api.body import MAX_DEPTH
from app.entrypoints.api.errors import MAX_ERRORS
from app.entrypoints.api.limits import BodyLimit
from app.entrypoints.api.schemas import MatchIn
from app.observability.metrics import Metrics
from app.settings import Settings

Check = Callable[[], Awaitable[object]]
DESCRIPTION = """Game stats: matches in, service records out, sagas in between.

Every call but the health checks and `/metrics` carries an API key,
`Authorization: Bearer <key>`; a key's role (`ingest`, `read`, `admin`) decides what it
may do (reads may be public by setting). Errors answer JSON: `{"detail": "..."}`, or for
a broken rule `{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}` naming the
field: """ + (
    f"""at most {MAX_ERRORS} of them, with `"more_errors": N` counting any left out. A body
that is not strict JSON (UTF-8, an object, no duplicate keys, no NaN or Infinity, integers
within 64 bits, no lone surrogates, nested at most {MAX_DEPTH} deep) is a 400 saying why."""
)


def create_app(
    settings: Settings,
    service: StatsService,
    operations: Operations,
    readiness: Mapping[str, Check] | None = None,
    pool_admin: PoolAdmin | None = None,
    metrics: Metrics | None = None,
    boards: Leaderboards | None = None,
) -> FastAPI:
    """The FastAPI app over ``service``; ``readiness`` checks back ``/readyz``; without
    ``pool_admin`` the pool endpoints answer 503, without ``boards`` the leaderboards;
    ``/metrics`` serves ``metrics`` (the process's, from bootstrap), else metrics of this
    app alone."""
    app = FastAPI(title="statsaga", version="0.1.0", description=DESCRIPTION)
    app.state.service = service
    app.state.operations = operations
    app.state.pools = pool_admin
    app.state.leaderboards = boards
    app.state.api_keys = dict(settings.api_keys)
    app.state.public_reads = settings.public_reads
    app.state.ingest_limiter = RateLimiter(settings.ingest_limit)
    app.state.read_limiter = RateLimiter(settings.read_limit)
    app.state.auth_failures = RateLimiter(settings.auth_failure_limit)
    app.state.max_pool_size = settings.max_pool_size
    app.state.readiness = dict(readiness or {})
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    errors.install(app)
    app.include_router(matches.router)
    app.include_router(admin.matches_router)
    app.include_router(players.router)
    app.include_router(leaderboards.router)
    app.include_router(admin.router)
    app.include_router(pools.router)
    app.include_router(health.router)
    web.install(app)
    metrics_routes.install(app, metrics or Metrics(worker=False))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the posted match's, which the ingest endpoint documents
    but reads itself (so that the body limit and the domain's validation come first)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        match_schema = MatchIn.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(match_schema.pop("$defs", {}))
        components["MatchIn"] = match_schema
        app.openapi_schema = schema
    return app.openapi_schema
