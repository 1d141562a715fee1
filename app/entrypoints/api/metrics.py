"""``GET /metrics`` (Prometheus; no key, as ``/healthz``) and the middleware that counts
every request by its route template."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.metrics import ApiMetrics, Metrics

INGEST_ROUTE = "/v1/matches"
# Raw paths would make a series per player id: a request no route takes is counted as one.
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text format (OpenMetrics when the Accept header "
            "asks for it).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request) -> Response:
    """This process's metrics, with the deployment's views read now (or a few seconds ago)."""
    source: Metrics = request.app.state.metrics
    body, content_type = await source.exposition(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)


def route_label(scope: Scope, routes: Iterable[BaseRoute]) -> str:
    """The route template a request was for: the route the router picked, or for a
    request answered before routing (a 413 by the body limit), the route it would have
    picked; ``unmatched`` when no route takes the path."""
    # The route's own path: routers here carry their prefix (``APIRouter(prefix=...)``);
    # a prefix given to ``include_router`` would not show in it.
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    probe = dict(scope)  # matching must leave the request's scope as it is
    partial: str | None = None
    for route in _leaves(routes):
        match, _ = route.matches(probe)
        if match is Match.FULL:
            return str(getattr(route, "path", UNMATCHED))
        if match is Match.PARTIAL and partial is None:  # the path, another method: a 405
            partial = str(getattr(route, "path", UNMATCHED))
    return partial or UNMATCHED


def _leaves(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    # FastAPI keeps an included router as one entry holding the router it includes.
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _leaves(included.routes)
        else:
            yield route


def method_label(method: str) -> str:
    """The method, or ``other`` for one HTTP does not define (bounded labels)."""
    return method if method in METHODS else "other"


class RequestMetrics:
    """ASGI middleware: counts and times each HTTP request by method, route and status."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, and observe it once answered (or failed: a 500)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before it answers

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            seconds = time.perf_counter() - started
            route = route_label(scope, self.routes)
            method = method_label(str(scope["method"]))
            self.metrics.request(method, route, status, seconds)
            if method == "POST" and route == INGEST_ROUTE:
                self.metrics.ingested(status, seconds)


def install(app: FastAPI, metrics: Metrics) -> None:
    """Serve ``/metrics`` from ``metrics`` and count ``app``'s requests in it."""
    app.state.metrics = metrics
    app.include_router(router)
    if metrics.api is not None:
        app.add_middleware(RequestMetrics, metrics=metrics.api, routes=app.router.routes)
