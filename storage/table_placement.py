"""``PlacementStore`` on Azure Table Storage: one row (``~pools``/``placement``) in the
``matches`` table ('~' cannot start a match id, so it never meets a match partition).
Saved under If-Match on the etag last read, so that of two writers the older version
cannot overwrite the newer one."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from app.application.ports import StoredPlacement
from app.domain.errors import ConcurrencyConflict, Conflict, NotFound
from app.domain.placement import Placement
from storage import entities as ent
from storage.azure_errors import EntityExists, map_azure_errors

PARTITION = "~pools"
ROW = "placement"


class TablePlacementStore:
    """The pool directory's placement, in the ``matches`` table."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def load(self) -> StoredPlacement | None:
        """The stored placement, or ``None`` before the first save."""
        row = await self._read()
        return None if row is None else _from_entity(row)

    async def save(self, stored: StoredPlacement) -> None:
        """Store ``stored``, refusing to replace a newer version (``Conflict``)."""
        row = await self._read()
        if row is not None and stored.placement.version < int(row["version"]):
            raise Conflict(
                f"placement version {stored.placement.version} is older than the stored "
                f"{row['version']}"
            )
        entity = _to_entity(stored)
        try:
            with map_azure_errors():
                if row is None:
                    await self._table.create_entity(entity)
                else:
                    await self._table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=ent.etag_of(row.metadata),
                        match_condition=MatchConditions.IfNotModified,
                    )
        except (EntityExists, ConcurrencyConflict) as exc:
            raise Conflict(f"the placement changed while it was saved: {exc}") from exc

    async def close(self) -> None:
        """Close the table client."""
        await self._table.close()

    async def _read(self) -> Any:
        try:
            with map_azure_errors():
                return await self._table.get_entity(PARTITION, ROW)
        except NotFound:
            return None


def _to_entity(stored: StoredPlacement) -> dict[str, Any]:
    p = stored.placement
    entity: dict[str, Any] = {
        "PartitionKey": PARTITION,
        "RowKey": ROW,
        "version": p.version,
        "game": p.game,
        "player": p.player,
        "configured_game": stored.configured_game,
        "configured_player": stored.configured_player,
        "board": p.board,
        "updated_at": stored.updated_at.isoformat(),
    }
    if stored.configured_board is not None:
        entity["configured_board"] = stored.configured_board
    return entity


def _from_entity(row: Any) -> StoredPlacement:
    # A row saved before the board pool joined the directory has no board columns: its
    # reader gets ``configured_board=None`` and applies ``StoredPlacement.with_board``.
    board = row.get("board")
    configured_board = row.get("configured_board")
    placement = Placement(int(row["version"]), int(row["game"]), int(row["player"]))
    return StoredPlacement(
        placement=placement if board is None else replace(placement, board=int(board)),
        configured_game=int(row["configured_game"]),
        configured_player=int(row["configured_player"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        configured_board=None if configured_board is None else int(configured_board),
    )
