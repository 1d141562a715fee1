"""``InMemoryBoardSnapshots``: the blob adapter's behaviour in a dict. It keeps the same
gzip JSON bytes, so a snapshot JSON cannot hold, or a mode that is no valid blob name, is
refused here as there. Not durable: for unit tests and single-process runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from storage.blob_boards import decode_snapshot, encode_snapshot, snapshot_blob


class InMemoryBoardSnapshots:
    """``BoardSnapshots`` in a dict of blob names to bytes."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self.saves = 0

    async def save(self, mode: str, snapshot: Mapping[str, Any]) -> None:
        """Replace the mode's snapshot."""
        self._blobs[snapshot_blob(mode)] = encode_snapshot(snapshot)
        self.saves += 1

    async def load(self, mode: str) -> dict[str, Any] | None:
        """The mode's snapshot, ``None`` when it has none."""
        body = self._blobs.get(snapshot_blob(mode))
        return None if body is None else decode_snapshot(body)

    async def modes(self) -> list[str]:
        """The modes that have a snapshot, sorted."""
        return sorted(name.removesuffix(".json.gz") for name in self._blobs)

    async def close(self) -> None:
        """Nothing to release."""
