"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.entrypoints.api.schemas import Alive, Readiness

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_S = 3.0


@router.get("/healthz", summary="The process is alive", response_model=Alive)
async def healthz() -> dict[str, str]:
    """Always 200 while the process serves HTTP."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Every dependency answers",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready; the body names what."}},
)
async def readyz(request: Request) -> JSONResponse:
    """200 only when every dependency answers; the body names each one's state, and
    for one that does not, what is wrong (a load balancer stops sending it requests)."""
    checks: dict[str, Any] = request.app.state.readiness
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
            results[name] = "ok"
        except Exception as exc:  # a readiness probe reports, it never raises
            results[name] = f"{type(exc).__name__}: {exc}"[:300]
    ready = all(v == "ok" for v in results.values())
    return JSONResponse({"ready": ready, "checks": results}, status_code=200 if ready else 503)
