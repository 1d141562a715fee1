"""Opening the Azure storage adapters: tables ``{prefix}players``, ``{prefix}matches`` and
blob containers ``{prefix}matches`` and ``{prefix}boards``, created if missing. Nothing
connects at import."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from azure.core.exceptions import ResourceExistsError
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry

from app.domain.errors import NotFound
from app.domain.faults import FaultPlan
from storage.azure_errors import map_azure_errors
from storage.blob_archive import BlobPayloadArchive
from storage.blob_boards import BlobBoardSnapshots
from storage.fault_injection import fault_options
from storage.table_placement import TablePlacementStore
from storage.table_players import TablePlayerStore
from storage.table_sagas import TableSagaLog

# Table names are alphanumeric and start with a letter; the prefix keeps that true.
_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9]*)?")
# The blob SDK's default first retry waits 15 s (+-3): one lost answer on a payload read
# held a saga that long (bench: p95 time to consistency 35 s under 10% storage faults).
# The tables SDK retries at once, then after 1.6 s, 3.2 s; blobs now about the same.
BLOB_FIRST_RETRY_S, BLOB_RETRY_BASE_S = 0.2, 2
PROBE_KEY = "readiness-probe"
# aiohttp, told to trust the environment (azure-core's default), reads ~/.netrc and looks
# the proxy up in a thread for every request: ~10% of an actor's CPU (py-spy, bench). It
# only changes anything when a proxy is set, so it is trusted only then.
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")


def proxy_configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment names an HTTP proxy (upper or lower case, as aiohttp reads)."""
    return any(environ.get(name) or environ.get(name.lower()) for name in PROXY_VARIABLES)


@dataclass
class TableStorage:
    """The storage adapters over one account, and the clients they share."""

    players: TablePlayerStore
    sagas: TableSagaLog
    archive: BlobPayloadArchive
    placements: TablePlacementStore
    boards: BlobBoardSnapshots
    tables: TableServiceClient
    blobs: BlobServiceClient
    archive_container: str = "matches"

    async def ready(self) -> bool:
        """One cheap call per service; True, or a domain error saying why not."""
        with contextlib.suppress(NotFound):  # NotFound: the table answered
            await self.sagas.load(PROBE_KEY)
        with map_azure_errors():
            await self.blobs.get_container_client(self.archive_container).get_container_properties()
        return True

    async def close(self) -> None:
        """Close every client (the adapters' ones first, then the shared services)."""
        for closer in (
            self.players.close,
            self.sagas.close,
            self.archive.close,
            self.placements.close,
            self.boards.close,
        ):
            await closer()
        await self.tables.close()
        await self.blobs.close()


async def open_table_storage(
    connection_string: str,
    prefix: str = "",
    faults: FaultPlan | None = None,
    sdk_retries: int | None = None,
) -> TableStorage:
    """Connect, create the tables and the container if missing, and build the adapters.
    ``faults`` injects failures and latency at the SDKs' transport; ``sdk_retries`` limits
    the SDKs' own retries (None: their defaults)."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"storage prefix {prefix!r} must be letters/digits starting with a letter")
    env = proxy_configured()
    tables = TableServiceClient.from_connection_string(
        connection_string, **fault_options(faults, sdk_retries, env)
    )
    blob_retry = ExponentialRetry(
        initial_backoff=BLOB_FIRST_RETRY_S,  # type: ignore[arg-type]  # int in its hints only
        increment_base=BLOB_RETRY_BASE_S,
        random_jitter_range=BLOB_FIRST_RETRY_S,  # type: ignore[arg-type]
        retry_total=3 if sdk_retries is None else sdk_retries,
    )
    blobs = BlobServiceClient.from_connection_string(
        connection_string, retry_policy=blob_retry, **fault_options(faults, None, env)
    )
    container = f"{prefix}matches".lower()  # container names are lowercase
    boards = f"{prefix}boards".lower()
    try:
        with map_azure_errors():
            for name in (f"{prefix}players", f"{prefix}matches"):
                with contextlib.suppress(ResourceExistsError):
                    await tables.create_table(name)
            for name in (container, boards):
                with contextlib.suppress(ResourceExistsError):
                    await blobs.create_container(name)
    except BaseException:
        await tables.close()
        await blobs.close()
        raise
    return TableStorage(
        players=TablePlayerStore(tables.get_table_client(f"{prefix}players")),
        sagas=TableSagaLog(tables.get_table_client(f"{prefix}matches")),
        archive=BlobPayloadArchive(blobs.get_container_client(container)),
        placements=TablePlacementStore(tables.get_table_client(f"{prefix}matches")),
        boards=BlobBoardSnapshots(blobs.get_container_client(boards)),
        tables=tables,
        blobs=blobs,
        archive_container=container,
    )


async def storage_ready(storage: TableStorage) -> bool:
    """For ``/readyz``: True when both services answer; raises a domain error otherwise."""
    return await storage.ready()
