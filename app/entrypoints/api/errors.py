"""Domain errors as HTTP responses, each with a JSON body that says what went wrong."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.domain.errors import (
    Conflict,
    DuplicateMatch,
    InvalidMatch,
    NotFound,
    TransientError,
)

MAX_ERRORS = 50  # a 422 lists at most this many; ``more_errors`` counts the rest
MAX_ECHO = 64  # characters of a client's value (a key, an input) an error may quote


def capped(detail: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A 422 body: the first ``MAX_ERRORS`` errors, and how many more there were. The
    shape stays FastAPI's ``{"detail": [...]}``, so its clients parse it as before."""
    body: dict[str, Any] = {"detail": [_bounded(e) for e in detail[:MAX_ERRORS]]}
    if len(detail) > MAX_ERRORS:
        body["more_errors"] = len(detail) - MAX_ERRORS
    return body


def _bounded(error: Mapping[str, Any]) -> dict[str, Any]:
    # Keys from the body can sit in ``loc`` and pydantic quotes the refused value in
    # ``input``: a 422 must not hand a megabyte back, or each of 50 errors would.
    out = dict(error)
    out["loc"] = [p[:MAX_ECHO] if isinstance(p, str) else p for p in error.get("loc", ())]
    if "input" in out:
        value = out["input"]
        if isinstance(value, str) and len(value) > MAX_ECHO:
            out["input"] = value[:MAX_ECHO] + "…"
        elif not (value is None or isinstance(value, bool | int | float | str)):
            del out["input"]  # an object or a list: the loc already says where it is
    return out


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(InvalidMatch)
    async def _invalid(_: Request, exc: InvalidMatch) -> JSONResponse:
        # FastAPI's own 422 shape, so that clients parse one format for every error.
        detail = [{"loc": ["body", *e.loc], "msg": e.msg, "type": e.type} for e in exc.errors]
        return JSONResponse(capped(detail), status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler, with the same cap as a refused match.
        return JSONResponse(jsonable_encoder(capped(exc.errors())), status_code=422)

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
