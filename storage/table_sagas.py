"""``SagaLog`` on Azure Table Storage: one partition per match (DESIGN §2).

Rows: ``summary`` (state, per-player progress as JSON, counts, hash, times), ``p:{player}``
(the player's delta, written with SagaStarted) and ``log:{seq:08d}`` (one event each).
A save is one transaction: the summary merged under If-Match on its etag, plus the new
log and delta rows; so the log never disagrees with the state it explains.

The outbox index (``~outbox-*`` partitions, one row per match) is written *before* the
summary and deleted after ``mark_published``: a crash anywhere in between leaves a row
that the sweeper finds, so no stored match can stay unpublished.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from app.domain import codec
from app.domain.errors import ConcurrencyConflict, DuplicateMatch, NotFound
from app.domain.model import Match
from app.domain.saga import Saga, SagaEvent
from app.domain.stats import StatDelta
from app.ports import LogEntry, SagaRecord
from storage import entities as ent
from storage.azure_errors import EntityExists, map_azure_errors


def log_entity(match_id: str, seq: int, event: SagaEvent, at: datetime) -> dict[str, Any]:
    """One ``log:`` row."""
    data = codec.event_to_dict(event)
    return {
        "PartitionKey": match_id,
        "RowKey": ent.log_key(seq),
        "data": ent.dumps(data),
        "type": data["type"],
        "at": at.isoformat(),
    }


def save_size(events: Sequence[SagaEvent], deltas: Mapping[str, StatDelta] | None) -> int:
    """Operations in the transaction of one save; ``ValueError`` above the batch limit
    (splitting it would break the atomicity of state + log)."""
    size = 1 + len(events) + len(deltas or {})
    if size > ent.MAX_BATCH:
        raise ValueError(f"a save is one transaction of at most {ent.MAX_BATCH} rows, got {size}")
    return size


class TableSagaLog:
    """``SagaLog`` over one table client (the ``matches`` table)."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def create(self, match: Match, accepted_at: datetime) -> tuple[SagaRecord, bool]:
        """Insert the summary; an existing one with the same payload hash is returned."""
        summary = ent.new_summary(match, accepted_at)
        saga = Saga(match.match_id)
        outbox = {
            "PartitionKey": ent.outbox_partition(match.match_id),
            "RowKey": match.match_id,
            "accepted_at": accepted_at.isoformat(),
        }
        with map_azure_errors():
            await self._table.upsert_entity(outbox, mode=UpdateMode.REPLACE)
        try:
            with map_azure_errors():
                meta = await self._table.create_entity(ent.summary_entity(summary, saga, 0))
        except EntityExists:
            existing = await self.load(match.match_id)
            if existing.summary.payload_hash != summary.payload_hash:
                raise DuplicateMatch(match.match_id) from None
            return existing, False
        return SagaRecord(summary, saga, 0, ent.etag_of(meta)), True

    async def load(self, match_id: str) -> SagaRecord:
        """The summary row as a ``SagaRecord``; ``NotFound`` if the match is unknown."""
        with map_azure_errors():
            entity = await self._table.get_entity(match_id, ent.SUMMARY_KEY)
        return ent.saga_record_from_entity(entity, ent.etag_of(entity.metadata))

    async def save(
        self,
        record: SagaRecord,
        saga: Saga,
        events: Sequence[SagaEvent],
        at: datetime,
        deltas: Mapping[str, StatDelta] | None = None,
    ) -> SagaRecord:
        """Summary (If-Match) + log rows + delta rows, in one transaction."""
        save_size(events, deltas)
        match_id = record.summary.match_id
        summary = ent.next_summary(record.summary, saga, at)
        seq = record.seq + len(events)
        guard = {
            "mode": UpdateMode.MERGE,
            "etag": record.etag,
            "match_condition": MatchConditions.IfNotModified,
        }
        ops: list[tuple[Any, ...]] = [("update", ent.saga_fields(saga, seq, summary), guard)]
        ops += [
            ("create", log_entity(match_id, record.seq + i, event, at))
            for i, event in enumerate(events, start=1)
        ]
        for pid, delta in (deltas or {}).items():
            row = {"PartitionKey": match_id, "RowKey": f"{ent.DELTA_PREFIX}{pid}"}
            ops.append(("upsert", {**row, "data": ent.dumps(delta.to_dict())}))
        try:
            with map_azure_errors():
                result = await self._table.submit_transaction(ops)
        except EntityExists as error:
            # A log row exists although the etag matched: only another saver can do that.
            raise ConcurrencyConflict(f"saga {match_id!r} was saved concurrently") from error
        return SagaRecord(summary, saga, seq, ent.etag_of(result[0]))

    async def deltas(self, match_id: str) -> dict[str, StatDelta]:
        """The ``p:`` rows as ``{player_id: delta}``."""
        rows = await self._range(match_id, ent.DELTA_PREFIX, "p;", ["RowKey", "data"])
        return {r["RowKey"][len(ent.DELTA_PREFIX) :]: ent.delta_from_entity(r) for r in rows}

    async def log(self, match_id: str) -> list[LogEntry]:
        """The ``log:`` rows in sequence order (RowKeys are zero-padded)."""
        rows = await self._range(match_id, ent.LOG_PREFIX, ent.LOG_END, ["RowKey", "data", "at"])
        return [
            LogEntry(
                seq=int(r["RowKey"][len(ent.LOG_PREFIX) :]),
                at=datetime.fromisoformat(r["at"]),
                event=codec.event_from_dict(json.loads(r["data"])),
            )
            for r in rows
        ]

    async def mark_published(self, match_id: str) -> None:
        """Merge ``published=True`` (unconditional: it only ever goes False → True)."""
        row = {"PartitionKey": match_id, "RowKey": ent.SUMMARY_KEY, "published": True}
        with map_azure_errors():
            await self._table.update_entity(row, mode=UpdateMode.MERGE)
        await self._forget_outbox(match_id)

    async def unpublished(self, accepted_before: datetime, limit: int) -> list[str]:
        """Scan the outbox partitions (small: rows live seconds) for old entries."""
        found: list[str] = []
        for partition in ent.outbox_partitions():
            rows = await self._range(partition, "", "~", ["RowKey", "accepted_at"])
            for row in rows:
                if datetime.fromisoformat(row["accepted_at"]) >= accepted_before:
                    continue
                match_id = row["RowKey"]
                try:
                    record = await self.load(match_id)
                except NotFound:  # the POST failed before storing: nothing to publish
                    await self._forget_outbox(match_id)
                    continue
                if record.summary.published:  # crashed between the merge and the delete
                    await self._forget_outbox(match_id)
                    continue
                found.append(match_id)
                if len(found) >= limit:
                    return found
        return found

    async def _forget_outbox(self, match_id: str) -> None:
        with map_azure_errors():
            await self._table.delete_entity(ent.outbox_partition(match_id), match_id)

    async def close(self) -> None:
        """Close the table client."""
        await self._table.close()

    async def _range(self, pk: str, start: str, end: str, select: list[str]) -> list[Any]:
        with map_azure_errors():
            pages = self._table.query_entities(
                "PartitionKey eq @pk and RowKey ge @start and RowKey lt @end",
                parameters={"pk": pk, "start": start, "end": end},
                select=select,
            )
            return [row async for row in pages]
