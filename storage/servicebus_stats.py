"""``QueueStats`` through Service Bus's administration API, with the official async SDK's
``ServiceBusAdministrationClient``: the same code reads Azure Service Bus, Microsoft's
emulator and the project's local broker (each serves the API; the emulators on a port of
their own, 5300 by default).

azure-servicebus 7.15's administration client always speaks HTTPS: it reads
``UseDevelopmentEmulator=true`` and sets ``use_tls=False``, but nothing in its pipeline
uses that flag (its base URL is ``https://{endpoint}``). The emulators serve plain HTTP,
so for such a connection string (and only then) the client gets a transport that sends
its requests over HTTP. Everything else (paths, Atom XML, paging, errors) is the SDK's.

A scrape must not hang on a bus that does not answer: every call is bounded by
``timeout_s`` and then raises ``BusUnavailable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import aiohttp
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.servicebus.aio.management import ServiceBusAdministrationClient

from app.application.ports import QueueDepth
from app.domain.errors import BusUnavailable, DomainError, NotFound, PermanentError


def uses_emulator(connection_string: str) -> bool:
    """The connection string names a development emulator (as the SDK reads it: the key in
    any case, the value exactly ``true``)."""
    for part in connection_string.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "usedevelopmentemulator":
            return value.strip() == "true"
    return False


# azure.core exports its transports lazily (a module __getattr__): mypy sees Any.
class PlainHttpTransport(AioHttpTransport):  # type: ignore[misc]
    """The SDK's aiohttp transport, sending over HTTP what the client addressed to HTTPS."""

    async def send(self, request: Any, **kwargs: Any) -> Any:
        if request.url.startswith("https://"):
            request.url = "http://" + request.url.removeprefix("https://")
        return await super().send(request, **kwargs)


def endpoint_of(connection_string: str) -> str:
    """``host[:port]`` of the connection string's endpoint (for messages: no secret)."""
    for part in connection_string.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "endpoint":
            return value.strip().split("//", 1)[-1].rstrip("/")
    return "?"


def _reason(error: BaseException) -> str:
    # Only the first line, shortened: transport errors can quote the whole exchange,
    # signed Authorization header included.
    first = str(error).replace("\\n", "\n").partition("\n")[0][:100]
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def translate(error: BaseException, where: str, emulator: bool) -> DomainError | None:
    """The domain error for an SDK or transport exception, or ``None`` if it is not one."""
    if isinstance(error, ResourceNotFoundError):
        return NotFound(_reason(error).partition(": ")[2] or f"not found at {where}")
    api = f"Service Bus administration API at {where}"
    hint = (
        " (emulators serve it on a port of their own, 5300 by default:"
        " set STATSAGA_SERVICEBUS_ADMIN_CONNECTION_STRING)"
        if emulator
        else ""
    )
    if isinstance(error, ClientAuthenticationError):
        return PermanentError(f"{api} refused the credentials")
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return BusUnavailable(f"{api} unreachable ({_reason(error)}){hint}")
    if isinstance(error, HttpResponseError):
        status = error.status_code or 0
        if status in (408, 429) or status >= 500:
            return BusUnavailable(f"{api} answered {status} {error.reason or ''}".rstrip())
        return PermanentError(f"{api} refused the request: {status} {error.reason or ''}".rstrip())
    if isinstance(error, AzureError):
        return PermanentError(f"{api}: {_reason(error)}")
    if isinstance(error, TimeoutError):
        return BusUnavailable(f"{api} did not answer in time{hint}")
    if isinstance(error, aiohttp.ClientError | OSError):
        return BusUnavailable(f"{api} unreachable ({_reason(error)}){hint}")
    return None


@contextmanager
def map_admin_errors(where: str, emulator: bool = False) -> Iterator[None]:
    """Re-raise SDK and transport exceptions raised inside the block as domain errors."""
    try:
        yield
    except DomainError:
        raise
    except Exception as error:
        mapped = translate(error, where, emulator)
        if mapped is None:
            raise
        raise mapped from error


class ServiceBusQueueStats:
    """``QueueStats`` over ``azure.servicebus.aio.management``: one client, one GET per
    queue (concurrently), the whole call bounded by ``timeout_s``."""

    def __init__(
        self, connection_string: str, *, timeout_s: float = 5.0, retry_total: int = 1
    ) -> None:
        self._emulator = uses_emulator(connection_string)
        self._where = endpoint_of(connection_string)
        self._timeout_s = timeout_s
        options: dict[str, Any] = {
            "retry_total": retry_total,
            "connection_timeout": timeout_s,
            "read_timeout": timeout_s,
        }
        if self._emulator:
            options["transport"] = PlainHttpTransport()
        self._client = ServiceBusAdministrationClient.from_connection_string(
            connection_string, **options
        )

    async def _depth(self, queue: str) -> QueueDepth:
        props = await self._client.get_queue_runtime_properties(queue)
        return QueueDepth(
            active=props.active_message_count or 0,
            scheduled=props.scheduled_message_count or 0,
            dead_letter=props.dead_letter_message_count or 0,
        )

    async def depths(self, queues: Sequence[str]) -> dict[str, QueueDepth]:
        """Each queue's counts; ``NotFound`` names a queue the namespace lacks,
        ``BusUnavailable`` says the API did not answer within the timeout."""
        with map_admin_errors(self._where, self._emulator):
            async with asyncio.timeout(self._timeout_s):
                # Every request ends here, failed or not: none is left running on its own.
                found = await asyncio.gather(
                    *(self._depth(q) for q in queues), return_exceptions=True
                )
            depths: dict[str, QueueDepth] = {}
            for queue, result in zip(queues, found, strict=True):
                if isinstance(result, BaseException):
                    raise result
                depths[queue] = result
        return depths

    async def close(self) -> None:
        """Close the client's HTTP session."""
        with map_admin_errors(self._where, self._emulator):
            await self._client.close()
