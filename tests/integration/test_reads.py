"""Reads are bounded: the match detail is conditional and built once per payload, reads
are rate limited per key (per client address for public reads), and unknown keys are
limited per client address. The API app in this process over real Azurite, called
through ASGI from chosen client addresses."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from actors.grains import PlayerGrainHost
from app.application.commands import StartSaga
from app.application.operations import Operations
from app.application.runner import LocalSagaRunner
from app.application.services import StatsService
from app.domain.model import Match
from app.domain.ratelimit import RateLimiter
from app.entrypoints.api import create_app
from app.settings import Settings
from devstack.processes import Azurite
from storage.memory_bus import InMemoryMessageBus
from storage.tables import TableStorage, open_table_storage
from tests.support.matches import random_match

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(120)]
READ = "read-key-for-the-reads-tests-0123456789"
OTHER = "read-key-for-the-reads-tests-abcdefghij"
INGEST = "ingest-key-for-the-reads-tests-01234567"
KEYS = f"{READ}:read,{OTHER}:read,{INGEST}:ingest"


@dataclass
class CountingArchive:
    """The blob archive, counting the payload reads the API makes."""

    inner: Any
    gets: int = 0

    async def put(self, match: Match) -> None:
        await self.inner.put(match)

    async def get(self, match_id: str, payload_hash: str) -> dict[str, Any]:
        self.gets += 1
        payload: dict[str, Any] = await self.inner.get(match_id, payload_hash)
        return payload


@pytest.fixture
async def storage(azurite: Azurite, unique: str) -> AsyncIterator[TableStorage]:
    opened = await open_table_storage(azurite.connection_string, f"r{unique}")
    yield opened
    await opened.close()


@dataclass
class Api:
    app: FastAPI
    archive: CountingArchive
    storage: TableStorage

    @asynccontextmanager
    async def client(self, address: str = "10.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://statsaga") as http:
            yield http


@pytest.fixture
def api_factory(storage: TableStorage) -> Iterator[Any]:
    def make(**settings: Any) -> Api:
        archive = CountingArchive(storage.archive)
        grains = PlayerGrainHost(storage.players)
        bus = InMemoryMessageBus()
        service = StatsService(storage.sagas, archive, storage.players, grains, bus)  # type: ignore[arg-type]
        app = create_app(
            Settings(api_keys=KEYS, **settings), service, Operations(storage.sagas, bus)
        )
        return Api(app, archive, storage)

    yield make


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---- the match detail --------------------------------------------------------------------


async def test_match_detail_is_conditional_and_reads_the_payload_once(api_factory: Any) -> None:
    api: Api = api_factory()
    match = random_match(random.Random(1), f"m-{random.getrandbits(32):x}", ["a", "b", "c"])
    path = f"/v1/matches/{match['match_id']}"
    async with api.client() as http:
        assert (
            await http.post("/v1/matches", json=match, headers=_auth(INGEST))
        ).status_code == 202
        first = await http.get(path, headers=_auth(READ))
        assert first.status_code == 200 and first.json()["state"] == "accepted"
        etag = first.headers["etag"]
        again = await http.get(path, headers=_auth(READ))
        assert again.status_code == 200 and again.json() == first.json()
        assert again.headers["etag"] == etag
        same = await http.get(path, headers={**_auth(READ), "If-None-Match": etag})
        assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
        assert api.archive.gets == 1  # the payload's part was built once

        runner = LocalSagaRunner(
            api.storage.sagas, api.storage.archive, api.app.state.service.grains
        )
        assert (await runner.handle(StartSaga(match["match_id"]))).state == "completed"
        moved = await http.get(path, headers={**_auth(READ), "If-None-Match": etag})
        assert moved.status_code == 200 and moved.headers["etag"] != etag
        body = moved.json()
        assert body["state"] == "completed" and body["log"][-1]["type"] == "SagaCompleted"
        assert {p["status"] for p in body["players"]} == {"applied"}
        assert [p["counters"] for p in body["players"]] == [
            p["counters"] for p in first.json()["players"]
        ]
        assert api.archive.gets == 1


# ---- read rate limits --------------------------------------------------------------------


async def test_reads_are_rate_limited_per_key_with_retry_after(api_factory: Any) -> None:
    api: Api = api_factory(read_rate_per_s=0.5, read_burst=3)
    async with api.client() as http:
        codes = [
            (await http.get("/v1/players/nobody/stats", headers=_auth(READ))).status_code
            for _ in range(3)
        ]
        assert codes == [404] * 3
        refused = await http.get("/v1/matches/m-any", headers=_auth(READ))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "this key may read" in refused.json()["detail"]
        # Another key has a bucket of its own.
        assert (await http.get("/v1/matches/m-any", headers=_auth(OTHER))).status_code == 404


async def test_public_reads_without_a_key_are_limited_per_client_address(
    api_factory: Any,
) -> None:
    api: Api = api_factory(public_reads=True, read_rate_per_s=0.5, read_burst=2)
    async with api.client("10.0.0.7") as one, api.client("10.0.0.8") as two:
        assert [(await one.get("/v1/players/x/stats")).status_code for _ in range(2)] == [404] * 2
        refused = await one.get("/v1/players/x/stats")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "this address may read" in refused.json()["detail"]
        assert (await two.get("/v1/players/x/stats")).status_code == 404
        # A key is a bucket of its own, whatever address it comes from.
        assert (await one.get("/v1/players/x/stats", headers=_auth(READ))).status_code == 404


# ---- failed authentications --------------------------------------------------------------


async def test_unknown_keys_are_limited_per_client_address(api_factory: Any) -> None:
    api: Api = api_factory(auth_failures_per_min=3)
    path = "/v1/players/x/stats"
    async with api.client("10.0.0.9") as guesser, api.client("10.0.0.10") as user:
        guesses = [
            (await guesser.get(path, headers=_auth(f"guess-{i}"))).status_code for i in range(3)
        ]
        assert guesses == [401] * 3
        refused = await guesser.get(path, headers=_auth("guess-3"))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 20  # a token every 20 s
        # Even the right key from that address: else a 401 or 200 would grade each guess.
        assert (await guesser.get(path, headers=_auth(READ))).status_code == 429
        # Other addresses are not locked out by these failures.
        assert (await user.get(path, headers=_auth(READ))).status_code == 404
        assert (await user.get(path, headers=_auth("typo"))).status_code == 401


async def test_the_failed_authentication_limiter_keeps_a_bounded_number_of_addresses(
    api_factory: Any,
) -> None:
    api: Api = api_factory(auth_failures_per_min=3)
    limiter: RateLimiter = api.app.state.auth_failures
    limiter.max_keys = 20  # the default is 10,000: the same rule, quicker to reach
    for i in range(60):
        async with api.client(f"10.1.0.{i}") as http:
            assert (await http.get("/v1/admin/sagas", headers=_auth("guess"))).status_code == 401
    assert len(limiter) == 20
