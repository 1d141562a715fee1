"""The contract suites on a real Azure subscription: connection strings come from the
environment, and without them the Azure variants are skipped with the reason.

Everything a run creates has a unique name (``st<hex>`` table prefixes, ``contract-<hex>``
queues) and is deleted when its test ends, so runs never share state and leave nothing
behind (a run killed half-way may leave a few; they are named for finding them)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableServiceClient
from azure.servicebus.aio.management import ServiceBusAdministrationClient
from azure.storage.blob.aio import BlobServiceClient

from storage.tables import TableStorage, open_table_storage

STORAGE_ENV = "STATSAGA_TEST_AZURE_STORAGE_CONNECTION_STRING"
SERVICEBUS_ENV = "STATSAGA_TEST_AZURE_SERVICEBUS_CONNECTION_STRING"


def connection_string(variable: str) -> str:
    """The variable's value; skips the test, saying which variable, when it is unset."""
    value = os.environ.get(variable, "").strip()
    if not value:
        pytest.skip(f"real Azure: set {variable} to run this suite against Azure")
    return value


@contextlib.asynccontextmanager
async def azure_table_storage(conn: str) -> AsyncIterator[TableStorage]:
    """Table storage under a fresh prefix; its two tables and its container are deleted
    afterwards."""
    prefix = f"st{uuid.uuid4().hex[:12]}"
    storage = await open_table_storage(conn, prefix)
    try:
        yield storage
    finally:
        await storage.close()
        await _delete_storage(conn, prefix)


async def _delete_storage(conn: str, prefix: str) -> None:
    async with TableServiceClient.from_connection_string(conn) as tables:
        for name in (f"{prefix}players", f"{prefix}matches"):
            await tables.delete_table(name)  # no error when it is already gone
    async with BlobServiceClient.from_connection_string(conn) as blobs:
        with contextlib.suppress(ResourceNotFoundError):
            await blobs.delete_container(f"{prefix}matches".lower())


@contextlib.asynccontextmanager
async def azure_queues(
    conn: str, count: int, max_delivery_count: int = 10, lock_s: int = 5
) -> AsyncIterator[list[str]]:
    """``count`` new queues declared as the project declares its own (duplicate detection
    with a 10-minute window), deleted afterwards with what they still hold."""
    names = [f"contract-{uuid.uuid4().hex[:12]}" for _ in range(count)]
    async with ServiceBusAdministrationClient.from_connection_string(conn) as admin:
        try:
            for name in names:
                await admin.create_queue(
                    name,
                    lock_duration=timedelta(seconds=lock_s),
                    max_delivery_count=max_delivery_count,
                    requires_duplicate_detection=True,
                    duplicate_detection_history_time_window=timedelta(minutes=10),
                )
            yield names
        finally:
            for name in names:
                with contextlib.suppress(ResourceNotFoundError):
                    await admin.delete_queue(name)
