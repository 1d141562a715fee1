"""The HTTP server's limits come from the settings: the uvicorn config carries them, and a
real server on a local port enforces them (connections held at once, header size), with
httptools as its parser (app/entrypoints/http_protocol.py bounds the request head)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from actors.grains import GrainSettings, PlayerGrainHost
from app.application.operations import Operations
from app.application.services import StatsService
from app.bootstrap import Runtime
from app.entrypoints.hosting import http_server
from app.entrypoints.http_protocol import BoundedHttpToolsProtocol
from app.settings import Settings
from devstack.processes import free_port
from storage.memory import InMemoryPayloadArchive, InMemoryPlayerStore, InMemorySagaLog
from storage.memory_bus import InMemoryMessageBus


def _server(settings: Settings) -> uvicorn.Server:
    store, sagas, bus = InMemoryPlayerStore(), InMemorySagaLog(), InMemoryMessageBus()
    service = StatsService(
        sagas, InMemoryPayloadArchive(), store, PlayerGrainHost(store, GrainSettings()), bus
    )
    runtime = Runtime(settings, bus, service=service, operations=Operations(sagas, bus))
    return http_server(settings, runtime)


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
    assert config.http is BoundedHttpToolsProtocol  # httptools, with h11's head bound


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


# The bound is on what is buffered of a request's head while the head is incomplete; a
# head larger than one socket read (256 KiB at most) is always incomplete at some point.
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


async def _answer_to(url: str, chunks: list[bytes]) -> bytes:
    """Send ``chunks`` one read at a time, until the server answers; its answer."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    answer = bytearray()

    async def read() -> None:
        with contextlib.suppress(ConnectionError):  # the server closed after answering
            while chunk := await reader.read(65536):
                answer.extend(chunk)

    reading = asyncio.create_task(read())
    try:
        with contextlib.suppress(ConnectionError):
            for chunk in chunks:
                if answer:
                    break
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(0.005)  # a read of its own on the server
        await asyncio.wait_for(reading, 10)
    finally:
        writer.close()
    return bytes(answer)


async def test_a_head_trickled_in_small_reads_is_bounded_too() -> None:
    lines = [b"GET /healthz HTTP/1.1\r\nHost: t\r\n"]
    # 20 KB > 16 KiB, never complete: refused however the reads fall.
    lines += [f"X-Pad-{i}: {'x' * 1000}\r\n".encode() for i in range(20)]
    async with _serving() as url:
        answer = await _answer_to(url, lines)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


async def test_the_bound_is_per_request_on_a_kept_alive_connection() -> None:
    # Three heads of 10 KB, each in reads of 1 KB: under 16 KiB each, over it together.
    head = [b"GET /healthz HTTP/1.1\r\nHost: t\r\n"]
    head += [f"X-Pad-{i}: {'x' * 1000}\r\n".encode() for i in range(10)] + [b"\r\n"]
    async with _serving() as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            statuses = []
            for _ in range(3):
                for chunk in head:
                    writer.write(chunk)
                    await writer.drain()
                    await asyncio.sleep(0.005)  # a read of its own on the server
                status = await asyncio.wait_for(reader.readline(), 10)
                headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                length = next(
                    int(line.split(b":")[1])
                    for line in headers.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                statuses.append(status.split()[1])
        finally:
            writer.close()
    assert statuses == [b"200", b"200", b"200"]


async def _body_length(scope: Any, receive: Any, send: Any) -> None:
    """An app that reads the whole body and answers its length."""
    length, more = 0, True
    while more:
        message = await receive()
        length += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(length).encode()})


async def test_a_body_larger_than_the_bound_is_not_counted_as_a_head() -> None:
    port = free_port()
    config = uvicorn.Config(
        _body_length,
        port=port,
        http=BoundedHttpToolsProtocol,
        h11_max_incomplete_event_size=16_384,
        lifespan="off",
        log_config=None,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):  # until it listens
            if server.started:
                break
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 150000\r\n\r\n"
        # The body's last 50 KB in a read of its own, which ends the request.
        for chunk in (head + b"x" * 100_000, b"x" * 50_000):
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.05)
        answer = await asyncio.wait_for(reader.read(1000), 10)
        writer.close()
    finally:
        server.should_exit = True
        await task
    assert answer.startswith(b"HTTP/1.1 200") and b"\r\n150000\r\n" in answer, answer
