"""Strict JSON request bodies: anything malformed is a 400 naming what is wrong, never a 500.

``json.loads`` alone lets through what breaks later: ``NaN`` and ``Infinity`` (not JSON),
duplicate keys (the last one silently wins), lone surrogates (they cannot be encoded
back to UTF-8, so even the error answer naming them fails), integers of thousands of
digits (``ValueError`` past 4,300) and nesting deep enough to exhaust the recursion
limit. Every body the API reads goes through ``parse_json``."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.routing import APIRoute

MAX_DEPTH = 32  # a valid match nests 5 deep (match → players → line → weapons → weapon)
MAX_INT = 2**63 - 1  # Table Storage's Int64 columns; the domain's counter bounds are far lower
# After decoding, an escaped surrogate pair is one astral character: a surrogate left over
# was alone. Strings are searched only when the raw text holds such an escape (rarely).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class MalformedBody(ValueError):
    """The body is not a JSON object this API accepts; the message says why."""


def parse_json(raw: bytes, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Decode a request body: a UTF-8 JSON object, no duplicate keys, no ``NaN`` or
    ``Infinity``, integers within 64 bits, finite floats, no lone surrogates, nested at
    most ``max_depth`` deep. Raises ``MalformedBody``."""
    if not raw.strip():
        raise MalformedBody("body is empty: send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"body is not UTF-8 (byte {exc.start} is invalid)") from None
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except MalformedBody:
        raise
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"body is not valid JSON: {exc}") from None
    except ValueError:  # int() refuses literals of more than 4,300 digits
        raise MalformedBody(_TOO_BIG) from None
    except RecursionError:
        raise MalformedBody(_too_deep(max_depth)) from None
    if not isinstance(value, dict):
        raise MalformedBody(f"body must be a JSON object, not {_kind(value)}")
    _check_depth_and_numbers(value, max_depth)
    if _SURROGATE_ESCAPE.search(text) and any(map(_lone_surrogate, _scalars(value))):
        raise MalformedBody("body holds a lone UTF-16 surrogate (\\ud800-\\udfff), not text")
    return value


_TOO_BIG = f"body holds a number beyond 64 bits (integers within ±{MAX_INT}, floats finite)"


def _too_deep(max_depth: int) -> str:
    return f"body nests deeper than {max_depth} levels of objects and arrays"


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                # json.dumps escapes what UTF-8 cannot encode; the cut bounds the echo.
                raise MalformedBody(f"body repeats the key {json.dumps(key[:64])} in one object")
            seen.add(key)
    return obj


def _constant(name: str) -> Any:
    raise MalformedBody(f"body holds {name}, which is not JSON: numbers must be finite")


def _check_depth_and_numbers(value: dict[str, Any], max_depth: int) -> None:
    # One pass, level by level, over every value: the parse is already done, so this is
    # the only walk most bodies get.
    level: list[Any] = [value]
    for _ in range(max_depth):
        children: list[Any] = []
        for node in level:
            for item in node.values() if isinstance(node, dict) else node:
                if isinstance(item, dict | list):
                    children.append(item)
                elif item.__class__ is int:
                    if not -MAX_INT <= item <= MAX_INT:
                        raise MalformedBody(_TOO_BIG)
                elif item.__class__ is float and math.isinf(item):
                    raise MalformedBody(_TOO_BIG)
        if not children:
            return
        level = children
    raise MalformedBody(_too_deep(max_depth))


def _scalars(value: Any) -> Iterator[Any]:
    """Every key and every value that is not an object or an array."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield from node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        else:
            yield node


def _lone_surrogate(value: Any) -> bool:
    return isinstance(value, str) and _SURROGATE.search(value) is not None


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return "a number"


async def read_json(request: Request) -> dict[str, Any]:
    """The request's body through ``parse_json``; a malformed one is a 400."""
    try:
        return parse_json(await request.body())
    except MalformedBody as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None


class _StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = await read_json(self)
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body (the one FastAPI decodes for a body model) goes through
    ``parse_json``: a malformed body is a 400 here as it is on ``POST /v1/matches``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictRequest(request.scope, request.receive))

        return strict
