"""Malformed request bodies answer 400 naming the fault (never 500), nothing is stored or
published for them, and a 422 lists a bounded number of errors, each quoting little of
the input. The API app runs in process over the in-memory adapters."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from actors.grains import GrainSettings, PlayerGrainHost
from app.application.messages import MATCHES_QUEUE
from app.application.operations import Operations
from app.application.services import StatsService
from app.domain.errors import InvalidMatch
from app.domain.validation import parse_match
from app.entrypoints.api import create_app
from app.entrypoints.api.body import MAX_DEPTH, MalformedBody, parse_json
from app.entrypoints.api.errors import MAX_ERRORS
from app.settings import Settings
from storage.memory import InMemoryPayloadArchive, InMemoryPlayerStore, InMemorySagaLog
from storage.memory_bus import InMemoryMessageBus
from tests.support.matches import random_match

KEYS = {
    "ingest-key-0123456789": "ingest",
    "read-key-0123456789": "read",
    "admin-key-0123456789": "admin",
}
INGEST = {"Authorization": "Bearer ingest-key-0123456789", "Content-Type": "application/json"}
READ = {"Authorization": "Bearer read-key-0123456789"}
ADMIN = {"Authorization": "Bearer admin-key-0123456789", "Content-Type": "application/json"}


@dataclass
class Api:
    client: httpx.AsyncClient
    bus: InMemoryMessageBus


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    store, sagas = InMemoryPlayerStore(), InMemorySagaLog()
    archive, bus = InMemoryPayloadArchive(), InMemoryMessageBus()
    grains = PlayerGrainHost(store, GrainSettings())
    settings = Settings(api_keys=",".join(f"{k}:{r}" for k, r in KEYS.items()))
    app = create_app(
        settings, StatsService(sagas, archive, store, grains, bus), Operations(sagas, bus)
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://statsaga") as client:
        yield Api(client, bus)


def _match() -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    return random_match(random.Random(7), f"m-{run}", [f"p-{run}-a", f"p-{run}-b"], size=2)


def _with(fragment: str, field: str = "map") -> Callable[[dict[str, Any]], bytes]:
    """A valid match whose ``field`` holds ``fragment``, raw JSON text."""

    def body(match: dict[str, Any]) -> bytes:
        marker = "@@fragment@@"
        text = json.dumps({**match, field: marker})
        return text.replace(json.dumps(marker), fragment).encode()

    return body


def _player(fragment: str) -> Callable[[dict[str, Any]], bytes]:
    """A valid match whose first player's ``kills`` holds ``fragment``."""

    def body(match: dict[str, Any]) -> bytes:
        match["players"][0]["kills"] = "@@fragment@@"
        return json.dumps(match).replace('"@@fragment@@"', fragment).encode()

    return body


DEEP = 100_000
# (what, the body made from a valid match, words the 400 must hold)
MALFORMED: list[tuple[str, Callable[[dict[str, Any]], bytes], str]] = [
    ("nested 100,000 deep", _with("[" * DEEP + "]" * DEEP), f"deeper than {MAX_DEPTH}"),
    ("nested one past the limit", _with("[" * MAX_DEPTH + "]" * MAX_DEPTH), "deeper than"),
    ("an integer of 5,000 digits", _player("1" * 5000), "beyond 64 bits"),
    ("an integer past 64 bits", _player(str(2**64)), "beyond 64 bits"),
    ("a float past 64 bits", _player("1e400"), "beyond 64 bits"),
    ("NaN", _player("NaN"), "NaN"),
    ("Infinity", _player("Infinity"), "Infinity"),
    ("-Infinity", _player("-Infinity"), "-Infinity"),
    (
        "a lone surrogate key",
        lambda m: json.dumps(m)[:-1].encode() + b', "\\ud800": 1}',
        "surrogate",
    ),
    ("a lone surrogate value", _with('"\\udc00"'), "surrogate"),
    ("a reversed surrogate pair", _with('"\\udc00\\ud800"'), "surrogate"),
    ("a duplicate key", lambda m: json.dumps(m)[:-1].encode() + b', "map": "other"}', "repeats"),
    (
        "Latin-1, not UTF-8",
        lambda m: json.dumps({**m, "map": "caf\xe9"}, ensure_ascii=False).encode("latin-1"),
        "UTF-8",
    ),
    ("UTF-16, not UTF-8", lambda m: json.dumps(m).encode("utf-16"), "UTF-8"),
    ("an empty body", lambda m: b"", "empty"),
    ("only whitespace", lambda m: b" \r\n", "empty"),
    ("an array, not an object", lambda m: json.dumps([m]).encode(), "must be a JSON object"),
    ("a string, not an object", lambda m: b'"match"', "must be a JSON object"),
]


@pytest.mark.parametrize(("what", "make", "says"), MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_a_malformed_match_is_400_naming_the_fault_and_nothing_is_kept(
    api: Api, what: str, make: Callable[[dict[str, Any]], bytes], says: str
) -> None:
    match = _match()
    response = await api.client.post("/v1/matches", content=make(match), headers=INGEST)
    assert response.status_code == 400, response.text
    assert says in response.json()["detail"], response.text
    assert (
        await api.client.get(f"/v1/matches/{match['match_id']}", headers=READ)
    ).status_code == 404
    assert api.bus.depth(MATCHES_QUEUE) == 0


# Endpoints whose body FastAPI decodes for a model: the same rules, the same 400.
ADMIN_BODIES = [
    ("PUT", "/v1/admin/pools/game", '{"size": 2, "size": 3}', "repeats"),
    ("PUT", "/v1/admin/pools/game", '{"size": NaN}', "NaN"),
    ("PUT", "/v1/admin/pools/game", '{"size": 1' + "0" * 5000 + "}", "beyond 64 bits"),
    ("PUT", "/v1/admin/pools/game", "[2]", "must be a JSON object"),
    ("POST", "/v1/matches/m-1/invalidate", '{"reason": "\\ud800"}', "surrogate"),
    ("POST", "/v1/matches/m-1/invalidate", '{"reason": "a", "reason": "b"}', "repeats"),
    ("POST", "/v1/matches/m-1/invalidate", '{"reason": "no end', "not valid JSON"),
    ("POST", "/v1/admin/deadletters/replay", '{"message_ids": ["\\udfff"]}', "surrogate"),
    ("POST", "/v1/admin/deadletters/replay", "[" * DEEP + "]" * DEEP, "deeper than"),
]


@pytest.mark.parametrize(("method", "path", "body", "says"), ADMIN_BODIES)
async def test_operator_bodies_follow_the_same_rules(
    api: Api, method: str, path: str, body: str, says: str
) -> None:
    response = await api.client.request(method, path, content=body.encode(), headers=ADMIN)
    assert response.status_code == 400, response.text
    assert says in response.json()["detail"], response.text
    assert api.bus.depth(MATCHES_QUEUE) == 0


def _broken_events(count: int) -> dict[str, Any]:
    match = _match()
    match["events"] = [{"t": -1, "type": "kill"} for _ in range(count)]
    return match


async def test_a_422_lists_at_most_the_cap_and_counts_the_rest(api: Api) -> None:
    match = _broken_events(200)
    with pytest.raises(InvalidMatch) as refused:
        parse_match(match, now=None)
    total = len(refused.value.errors)
    assert total > MAX_ERRORS
    response = await api.client.post("/v1/matches", json=match, headers=INGEST)
    assert response.status_code == 422, response.text
    body = response.json()
    assert len(body["detail"]) == MAX_ERRORS
    assert body["more_errors"] == total - MAX_ERRORS
    assert body["detail"][0]["loc"][:2] == ["body", "events"]


async def test_a_model_422_is_capped_and_quotes_little_of_the_input(api: Api) -> None:
    ids = ["x" * 100_000] + [""] * 999  # one too long to quote, then 999 empty
    body = {"message_ids": ids}
    response = await api.client.post("/v1/admin/deadletters/replay", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert len(answer["detail"]) == MAX_ERRORS
    assert answer["more_errors"] == len(ids) - MAX_ERRORS
    assert answer["detail"][0]["loc"] == ["body", "message_ids", 0]
    assert len(response.content) < 20_000


@pytest.mark.parametrize(
    "path",
    [
        "/v1/admin/sagas?limit=" + "9" * 5000,
        "/v1/players/p-1/matches?limit=" + "9" * 5000,
    ],
)
async def test_a_422_for_a_query_quotes_little_of_it(api: Api, path: str) -> None:
    response = await api.client.get(path, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert len(response.content) < 1000


# ---- parse_json on its own -----------------------------------------------------------------


def test_what_a_careful_client_sends_is_accepted() -> None:
    nested = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    raw = (
        '{"a": "\\ud83c\\udfae", "b": "\\\\ud800", "c": -9223372036854775807, "d": 1.5e3, "e": %s}'
    )
    assert parse_json((raw % nested).encode()) == {
        "a": "\U0001f3ae",  # an escaped pair is one character
        "b": "\\ud800",  # an escaped backslash, then text
        "c": -(2**63 - 1),
        "d": 1500.0,
        "e": json.loads(nested),
    }


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert parse_json(json.dumps({"a": "[" * 1000 + "{" * 1000}).encode())


@pytest.mark.parametrize("raw", [b'{"a": 1, "a": 1}', b'{"a": {"b": 1, "b": 2}}'])
def test_duplicate_keys_at_any_level_are_refused(raw: bytes) -> None:
    with pytest.raises(MalformedBody, match="repeats the key"):
        parse_json(raw)


async def test_the_openapi_documents_the_400_rules_and_the_422_cap(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    ingest = spec["paths"]["/v1/matches"]["post"]["responses"]
    for rule in ("UTF-8 JSON object", "duplicate keys", "NaN", "lone surrogates", "deeper than"):
        assert rule in ingest["400"]["description"]
    assert "more_errors" in ingest["422"]["description"]
    invalid = spec["components"]["schemas"]["Invalid"]["properties"]
    assert invalid["detail"]["maxItems"] == MAX_ERRORS
    assert "more_errors" in invalid
