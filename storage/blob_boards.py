"""``BoardSnapshots`` on Azure Blob Storage: one blob per mode, ``{mode}.json.gz``, the
mode's boards as gzip-compressed JSON (``ModeBoards.to_snapshot``), replaced whole by
each save. A blob, not table rows: a mode with a million players is ~30 MB of JSON, far
past an entity's 1 MiB, and one upload per mode per interval is all a save costs."""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from typing import Any

from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import ContainerClient

from app.domain.errors import NotFound
from app.domain.ids import id_problem
from storage import entities as ent
from storage.azure_errors import map_azure_errors

SUFFIX = ".json.gz"
# Level 6 (gzip's default) is ~3x slower than 1 for a few percent less: a snapshot is
# written every few seconds by an actor that also serves reads.
_LEVEL = 1


def snapshot_blob(mode: str) -> str:
    """Where ``mode``'s snapshot lives; ``ValueError`` for a mode that is no valid id."""
    problem = id_problem(mode)
    if problem:
        raise ValueError(f"mode {mode[:64]!r}: {problem}")
    return mode + SUFFIX


def encode_snapshot(snapshot: Mapping[str, Any]) -> bytes:
    """The blob's bytes (gzip JSON; ``TypeError`` for what JSON cannot hold)."""
    return gzip.compress(ent.dumps(snapshot).encode(), compresslevel=_LEVEL)


def decode_snapshot(body: bytes) -> dict[str, Any]:
    """Inverse of ``encode_snapshot``."""
    snapshot: dict[str, Any] = ent.loads(gzip.decompress(body))
    return snapshot


class BlobBoardSnapshots:
    """``BoardSnapshots`` over one blob container."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container

    async def save(self, mode: str, snapshot: Mapping[str, Any]) -> None:
        """Upload the snapshot over the mode's previous one."""
        name, body = snapshot_blob(mode), encode_snapshot(snapshot)
        # A gzip file, not JSON sent gzip-encoded: with ``Content-Encoding: gzip`` the SDK's
        # HTTP client unpacks the download itself, and the bytes no longer say what they are.
        settings = ContentSettings(content_type="application/gzip")
        with map_azure_errors():
            await self._container.upload_blob(name, body, overwrite=True, content_settings=settings)

    async def load(self, mode: str) -> dict[str, Any] | None:
        """The mode's snapshot, ``None`` when it has none."""
        name = snapshot_blob(mode)
        try:
            with map_azure_errors():
                stream = await self._container.download_blob(name)
                body = await stream.readall()
        except NotFound:
            return None
        return decode_snapshot(body)

    async def modes(self) -> list[str]:
        """The modes that have a snapshot, sorted."""
        found = []
        with map_azure_errors():
            async for blob in self._container.list_blobs():
                if blob.name.endswith(SUFFIX):
                    found.append(blob.name.removesuffix(SUFFIX))
        return sorted(found)

    async def close(self) -> None:
        """Close the container client."""
        await self._container.close()
