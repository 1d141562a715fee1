"""Domain errors as HTTP responses, each with a JSON body that says what went wrong."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.domain.errors import (
    Conflict,
    DuplicateMatch,
    InvalidMatch,
    NotFound,
    TransientError,
)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(InvalidMatch)
    async def _invalid(_: Request, exc: InvalidMatch) -> JSONResponse:
        # FastAPI's own 422 shape, so that clients parse one format for every error.
        detail = [{"loc": ["body", *e.loc], "msg": e.msg, "type": e.type} for e in exc.errors]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(DuplicateMatch)
    async def _duplicate(_: Request, exc: DuplicateMatch) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "match_id": exc.match_id}, status_code=409)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(TransientError)
    async def _unavailable(_: Request, exc: TransientError) -> JSONResponse:
        return JSONResponse(
            {"detail": f"temporarily unavailable: {exc}"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
