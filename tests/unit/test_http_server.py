"""The HTTP server's limits come from the settings: the uvicorn config carries them, and a
real server on a local port enforces them (connections held at once, header size)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn

from actors.grains import GrainSettings, PlayerGrainHost
from app.bootstrap import Runtime
from app.cli import _http_server
from app.devstack import free_port
from app.operations import Operations
from app.services import StatsService
from app.settings import Settings
from storage.memory import InMemoryPayloadArchive, InMemoryPlayerStore, InMemorySagaLog
from storage.memory_bus import InMemoryMessageBus


def _server(settings: Settings) -> uvicorn.Server:
    store, sagas, bus = InMemoryPlayerStore(), InMemorySagaLog(), InMemoryMessageBus()
    service = StatsService(
        sagas, InMemoryPayloadArchive(), store, PlayerGrainHost(store, GrainSettings()), bus
    )
    runtime = Runtime(settings, bus, service=service, operations=Operations(sagas, bus))
    return _http_server(settings, runtime)


def test_the_environment_sets_the_server_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATSAGA_HTTP_LIMIT_CONCURRENCY", "7")
    monkeypatch.setenv("STATSAGA_HTTP_KEEP_ALIVE_S", "3")
    monkeypatch.setenv("STATSAGA_HTTP_BACKLOG", "64")
    monkeypatch.setenv("STATSAGA_HTTP_MAX_HEADER_BYTES", "8192")
    config = _server(Settings()).config
    assert config.limit_concurrency == 7
    assert config.timeout_keep_alive == 3
    assert config.backlog == 64
    assert config.h11_max_incomplete_event_size == 8192
    assert config.http == "h11"  # the header bound is h11's


def test_by_default_the_server_is_bounded() -> None:
    config = _server(Settings()).config
    assert config.limit_concurrency is not None and config.limit_concurrency > 0
    assert config.h11_max_incomplete_event_size is not None


@asynccontextmanager
async def _serving(**limits: int) -> AsyncIterator[str]:
    port = free_port()
    server = _server(Settings(port=port, **limits))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):  # until it listens (or fails)
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_past_the_concurrency_limit_a_request_is_503() -> None:
    # uvicorn counts open connections: a limit of 2 serves one and refuses the next.
    async with (
        _serving(http_limit_concurrency=2) as url,
        httpx.AsyncClient(base_url=url) as held,
        httpx.AsyncClient(base_url=url) as other,
    ):
        assert (await held.get("/healthz")).status_code == 200  # its connection stays open
        assert (await other.get("/healthz")).status_code == 503


# h11 bounds what it buffers of a request's head while the head is incomplete; a head
# larger than one socket read (256 KiB at most) is always incomplete at some point.
BIG_HEAD = {"X-Pad": "x" * 300_000}


async def test_the_header_bound_is_the_setting() -> None:
    async with (
        _serving(http_max_header_bytes=1_048_576) as url,
        httpx.AsyncClient(base_url=url) as c,
    ):
        assert (await c.get("/healthz", headers=BIG_HEAD)).status_code == 200
    async with _serving() as url, httpx.AsyncClient(base_url=url) as c:
        try:
            refused = (await c.get("/healthz", headers=BIG_HEAD)).status_code == 400
        except httpx.TransportError:  # answered 400 and closed while the client still sent
            refused = True
        assert refused
