"""``PlayerStore`` on Azure Table Storage: one partition per player (DESIGN §2).

Rows: ``record`` (the service record as JSON, see ``storage.entities``), ``m:{inverted
end ms}:{match}`` (history line + idempotency marker of the apply), ``u:{match}``
(compensation marker). Every change is one entity group transaction; the markers go
first so that a replay fails with 409 on its marker even when the record's etag is
stale too (Azurite reports the first failing operation; docs/azurite-batches.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from app.application.ports import (
    ApplyOutcome,
    HistoryEntry,
    HistoryPage,
    PlayerSnapshot,
    RevertOutcome,
)
from app.domain.errors import ConcurrencyConflict, NotFound
from app.domain.stats import ServiceRecord, StatDelta, revert_delta
from storage import entities as ent
from storage.azure_errors import EntityExists, map_azure_errors
from storage.table_batch import submit_transaction

Operation = tuple[Any, ...]
_INDEXED = re.compile(r"\d+:")
SCAN_PAGE = 1000  # Table Storage's largest page

log = logging.getLogger(__name__)


def record_operation(record: ServiceRecord, etag: str | None) -> Operation:
    """Insert the record row if the player is new, else replace it guarded by ``etag``."""
    if etag is None:
        return ("create", ent.record_entity(record))
    guard = {
        "mode": UpdateMode.REPLACE,
        "etag": etag,
        "match_condition": MatchConditions.IfNotModified,
    }
    return ("update", ent.record_entity(record), guard)


def failed_index(error: EntityExists) -> int | None:
    """The batch index of a 409, or ``None`` when the service did not say which operation
    failed (the SDK then defaults ``index`` to 0, which must not be trusted)."""
    cause = error.__cause__
    message = str(getattr(cause, "message", "") or "")
    return error.index if _INDEXED.match(message) else None


class TablePlayerStore:
    """``PlayerStore`` over one table client (the ``players`` table)."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def load(self, player_id: str) -> PlayerSnapshot:
        """The record and its etag; an empty record with etag ``None`` if there is none."""
        entity = await self._get(player_id, ent.RECORD_KEY)
        if entity is None:
            return PlayerSnapshot(ServiceRecord(player_id), None)
        return PlayerSnapshot(ent.record_from_entity(entity), ent.etag_of(entity.metadata))

    async def apply(self, snapshot: PlayerSnapshot, deltas: Sequence[StatDelta]) -> ApplyOutcome:
        """Markers + record in one transaction; markers that exist go to ``already``."""
        if len(deltas) > ent.MAX_BATCH - 1:
            raise ValueError(f"at most {ent.MAX_BATCH - 1} matches per apply, got {len(deltas)}")
        pending, already = ent.unique_by_match(deltas)
        while pending:
            record, fitted = ent.fold(snapshot.record, pending)
            ops: list[Operation] = [("create", ent.marker_entity(d, False)) for d in fitted]
            ops.append(record_operation(record, snapshot.etag))
            try:
                result = await self._submit(ops)
            except EntityExists as error:
                done = await self._applied_before(pending, error)
                pending = [d for d in pending if d.match_id not in done]
                already.extend(done)
                continue
            applied = tuple(d.match_id for d in pending)
            return ApplyOutcome(
                PlayerSnapshot(record, ent.etag_of(result[-1])), applied, tuple(already)
            )
        return ApplyOutcome(snapshot, (), tuple(already))

    async def revert(self, snapshot: PlayerSnapshot, delta: StatDelta) -> RevertOutcome:
        """Subtract the match and void its row, or void it ahead of a late apply."""
        pid = delta.player_id
        if await self._get(pid, ent.undo_key(delta.match_id)) is not None:
            return RevertOutcome(snapshot, False)
        marker = await self._get(pid, ent.marker_key(delta))
        undo: Operation = ("create", ent.undo_entity(pid, delta.match_id))
        if marker is None:
            # Never applied: a void marker makes a late apply a 409, i.e. a no-op.
            await self._submit_revert([undo, ("create", ent.marker_entity(delta, True))])
            return RevertOutcome(snapshot, False)
        if marker.get("void"):
            await self._submit_revert([undo])
            return RevertOutcome(snapshot, False)
        applied = ent.delta_from_entity(marker)  # subtract exactly what was added
        record = revert_delta(snapshot.record, applied)
        record = await self._replay_played(record, applied)
        void = {"PartitionKey": pid, "RowKey": marker["RowKey"], "void": True}
        ops = [
            undo,
            ("update", void, {"mode": UpdateMode.MERGE}),
            record_operation(record, snapshot.etag),
        ]
        result = await self._submit_revert(ops)
        if result is None:
            return RevertOutcome(snapshot, False)
        return RevertOutcome(PlayerSnapshot(record, ent.etag_of(result[-1])), True)

    async def history_row(self, delta: StatDelta) -> HistoryEntry | None:
        """The player's history row of ``delta``'s match, ``None`` if there is none."""
        row = await self._get(delta.player_id, ent.marker_key(delta))
        if row is None:
            return None
        return HistoryEntry(ent.delta_from_entity(row), bool(row.get("void")))

    async def history(
        self, player_id: str, limit: int, continuation: str | None = None
    ) -> HistoryPage:
        """Newest first; the token is the last RowKey served, so newer inserts never shift
        a later page (they sort before it)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        after = ent.decode_token(continuation) if continuation else ent.MARKER_PREFIX
        rows: list[dict[str, Any]] = []
        with map_azure_errors():
            pages = self._table.query_entities(
                "PartitionKey eq @pk and RowKey gt @after and RowKey lt @end",
                parameters={"pk": player_id, "after": after, "end": ent.MARKER_END},
                results_per_page=min(limit + 1, 1000),  # the service caps a page at 1,000
                select=["RowKey", "data", "void"],
            )
            async for entity in pages:
                rows.append(dict(entity))
                if len(rows) > limit:
                    break
        more = len(rows) > limit
        rows = rows[:limit]
        entries = tuple(HistoryEntry(ent.delta_from_entity(r), bool(r.get("void"))) for r in rows)
        token = ent.encode_token(rows[-1]["RowKey"]) if more else None
        return HistoryPage(entries, token)

    async def records(self) -> AsyncIterator[ServiceRecord]:
        """``RecordScan``: every ``record`` row of the table, a page at a time (a filter on
        the RowKey alone: Table Storage reads every partition for it, as a rebuild must)."""
        rows = self._table.query_entities(
            "RowKey eq @key", parameters={"key": ent.RECORD_KEY}, results_per_page=SCAN_PAGE
        )
        with map_azure_errors():
            async for entity in rows:
                try:
                    record = ent.record_from_entity(entity)
                except (ValueError, KeyError, TypeError) as exc:
                    # One corrupt row (its player's updates are dead-lettered until an
                    # operator repairs it) must not stop a rebuild of everyone else.
                    pid = entity.get("PartitionKey")
                    log.warning("record of %r unreadable, left out of the scan: %s", pid, exc)
                    continue
                yield record

    async def close(self) -> None:
        """Close the table client."""
        await self._table.close()

    # ---- helpers ------------------------------------------------------------------------

    async def _get(self, pk: str, rk: str) -> Any:
        try:
            with map_azure_errors():
                return await self._table.get_entity(pk, rk)
        except NotFound:
            return None

    async def _submit(self, ops: list[Operation]) -> list[Mapping[str, Any]]:
        try:
            with map_azure_errors():
                return await submit_transaction(self._table, ops)
        except NotFound as error:
            # The snapshot had an etag but the record row is gone: the snapshot is wrong.
            raise ConcurrencyConflict("the player's record is not what was read") from error

    async def _submit_revert(self, ops: list[Operation]) -> list[Mapping[str, Any]] | None:
        """Submit a compensation (``u:`` first). ``None``: the ``u:`` row existed, so another
        compensation won; any other 409 (the apply raced us) means reload and retry."""
        try:
            return await self._submit(ops)
        except EntityExists as error:
            if failed_index(error) == 0:
                return None
            raise ConcurrencyConflict("a concurrent apply changed the partition") from error

    async def _applied_before(self, pending: list[StatDelta], error: EntityExists) -> list[str]:
        """Match ids whose marker exists, after a 409 on ``pending`` + record."""
        index = failed_index(error)
        if index is not None:
            if index < len(pending):
                return [pending[index].match_id]
            raise ConcurrencyConflict("the player's record was created concurrently") from error
        # No index in the error: look the markers up instead of guessing.
        found = [d.match_id for d in pending if await self._get(d.player_id, ent.marker_key(d))]
        if not found:
            raise ConcurrencyConflict("the player's record was created concurrently") from error
        return found

    async def _replay_played(self, record: ServiceRecord, gone: StatDelta) -> ServiceRecord:
        """Recompute first/last played when the reverted match was one of them, from the
        remaining non-void markers (rows are newest first; the oldest needs a full scan,
        the newest only the head of the partition)."""
        edge = gone.ended_at
        if edge not in (record.first_played, record.last_played):
            return record
        need_oldest = edge == record.first_played
        newest: datetime | None = None
        oldest: datetime | None = None
        head: str | None = None
        with map_azure_errors():
            rows = self._table.query_entities(
                "PartitionKey eq @pk and RowKey gt @start and RowKey lt @end",
                parameters={
                    "pk": gone.player_id,
                    "start": ent.MARKER_PREFIX,
                    "end": ent.MARKER_END,
                },
                select=["RowKey", "data", "void", "match_id"],
            )
            async for row in rows:
                if row.get("void") or row["match_id"] == gone.match_id:
                    continue
                # Rows of the same millisecond may be out of order: read all of them.
                if head is not None and row["RowKey"][:15] != head and not need_oldest:
                    break
                ended = ent.delta_from_entity(row).ended_at
                head = head or row["RowKey"][:15]
                newest = max(newest, ended) if newest else ended
                oldest = min(oldest, ended) if oldest else ended
        return replace(
            record,
            first_played=oldest if need_oldest else record.first_played,
            last_played=newest if edge == record.last_played else record.last_played,
        )
