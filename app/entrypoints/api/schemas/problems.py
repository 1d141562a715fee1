"""Error answers, and the OpenAPI ``responses`` that document them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.entrypoints.api.body import MAX_DEPTH
from app.entrypoints.api.errors import MAX_ERRORS


class Problem(BaseModel):
    """What went wrong, in words."""

    detail: str = Field(examples=["player 'p-404' has no matches"])


class FieldProblem(BaseModel):
    """One broken rule; ``loc`` is the path to the field, starting with where it came
    from (``body``, ``path``, ``query``)."""

    loc: list[str | int] = Field(examples=[["body", "players", 0, "kills"]])
    msg: str = Field(examples=["must be <= 10000"])
    type: str = Field(examples=["value_error"])


class Invalid(BaseModel):
    """The broken rules of the request, each naming its field (a bounded number)."""

    detail: list[FieldProblem] = Field(max_length=MAX_ERRORS)
    more_errors: int | None = Field(
        None, ge=1, description="Broken rules left out of `detail` (only when there were any)."
    )


class Duplicate(Problem):
    """The match id was accepted before with another body."""

    match_id: str


# The answers of a read that honours If-None-Match (a service record, a match's detail).
CONDITIONAL: dict[int | str, dict[str, Any]] = {
    200: {"headers": {"ETag": {"description": "Send back in If-None-Match"}}},
    304: {"description": "Not modified since the ETag in If-None-Match."},
}


def errors(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error codes, with the body each one has."""
    plain = {
        400: "The request is malformed: a body that is not a UTF-8 JSON object, or that "
        "breaks a rule of strict JSON (duplicate keys, NaN or Infinity, integers beyond 64 "
        f"bits, lone surrogates, nesting deeper than {MAX_DEPTH}); or a token this API "
        "never issued. `detail` says which.",
        401: "No API key, or an unknown one (`Authorization: Bearer <key>`).",
        403: "The key's role may not do this.",
        404: "No such resource; the body says which.",
        409: "Conflicts with what is stored.",
        413: "The body is larger than the configured limit (checked before parsing).",
        422: f"A field breaks a rule; `detail[].loc` names it. At most {MAX_ERRORS} are "
        "listed; `more_errors` counts the rest.",
        429: "Too many requests from this key or client address (or too many unknown keys "
        "from this address); `Retry-After` says when to try again.",
        503: "A dependency is unavailable; `Retry-After` says when to try again.",
    }
    out: dict[int | str, dict[str, Any]] = {}
    if 401 in codes and 429 not in codes:
        codes = (*codes, 429)  # a key is checked: unknown keys are limited per address
    for code in codes:
        model: type[BaseModel] = Invalid if code == 422 else Problem
        out[code] = {"model": model, "description": described.get(f"e{code}", plain[code])}
        if code in (429, 503):
            out[code]["headers"] = {
                "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
            }
    return out
