"""``SagaLog`` on Azure Table Storage: one partition per match (DESIGN §2).

Rows: ``summary`` (state, per-player progress as JSON, counts, hash, times), ``p:+NNN``
(the players' deltas, as few rows as fit: written by the saga's first save, with its
start, or by ``create`` for matches stored so before issue 21) and ``log:{seq:08d}`` (the
events of one save, keyed by the first one's seq). Older ``p:{player}`` and one-event
``log:`` rows are read too.
A save is one transaction: the summary merged under If-Match on its etag, plus the new
log and delta rows; so the log never disagrees with the state it explains. A coordinator
taking a saga on from a message that carries nothing usable reads summary and deltas in
one query (``load_with_deltas``).

The open-saga index (``~open-*`` partitions, one row per match) is written *before* the
summary, whose ``index_etag`` remembers it, and deleted by that etag once the saga is
finished (one request: a row rewritten since, by a reopen, stays). The sweeper flags a
row ``published`` when it publishes a match itself. A crash anywhere in between leaves a
row that a sweeper finds (no stored match stays unpublished, no saga stalls unseen) or
one it drops (its summary says finished): the summary is always the truth, the index
only says where to look.

A sweeper drops a row only when it is older than ``INDEX_SETTLE_S`` and unchanged since
it was read (If-Match): a younger row may belong to a save still in flight (a match being
created, a finished saga being reopened), whose summary does not show it yet. Dropping
such a row once lost a reopened saga from the index (found by the chaos tests).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient

from app.application.ports import LogEntry, SagaRecord
from app.domain import codec
from app.domain.errors import ConcurrencyConflict, DuplicateMatch, NotFound
from app.domain.model import Match
from app.domain.saga import Saga, SagaEvent, SagaState
from app.domain.stats import StatDelta
from storage import entities as ent
from storage import summary_entities as summaries
from storage.azure_errors import EntityExists, map_azure_errors
from storage.saga_rows import checked_size, delta_entities, deltas_of, log_entities
from storage.table_batch import submit_transaction

log = logging.getLogger(__name__)
# Longer than any save can take (the SDKs give up well within it).
INDEX_SETTLE_S = 300.0


def _indexed_at(row: TableEntity) -> datetime:
    """When an index row was written (rows from before ``indexed_at`` existed: accepted)."""
    return datetime.fromisoformat(row.get("indexed_at") or row["accepted_at"])


class TableSagaLog:
    """``SagaLog`` over one table client (the ``matches`` table)."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def create(
        self, match: Match, accepted_at: datetime, deltas: Mapping[str, StatDelta]
    ) -> tuple[SagaRecord, bool]:
        """Insert the summary and the deltas in one transaction; an existing match with the
        same payload hash is returned."""
        index_etag = await self._index(match.match_id, accepted_at, published=False)
        summary = replace(summaries.new_summary(match, accepted_at), index_etag=index_etag)
        saga = Saga(match.match_id)
        ops: list[tuple[Any, ...]] = [("create", summaries.summary_entity(summary, saga, 0))]
        ops += [("create", row) for row in delta_entities(match.match_id, deltas)]
        checked_size(len(ops))
        try:
            with map_azure_errors():
                result = await submit_transaction(self._table, ops)
        except EntityExists:
            existing = await self.load(match.match_id)
            if existing.summary.payload_hash != summary.payload_hash:
                raise DuplicateMatch(match.match_id) from None
            return existing, False
        return SagaRecord(summary, saga, 0, ent.etag_of(result[0])), True

    async def load(self, match_id: str) -> SagaRecord:
        """The summary row as a ``SagaRecord``; ``NotFound`` if the match is unknown."""
        try:
            with map_azure_errors():
                entity = await self._table.get_entity(match_id, ent.SUMMARY_KEY)
        except NotFound:
            raise NotFound(f"match {match_id!r} not found") from None
        return summaries.saga_record_from_entity(entity, ent.etag_of(entity.metadata))

    async def load_with_deltas(self, match_id: str) -> tuple[SagaRecord, dict[str, StatDelta]]:
        """One query from ``p:`` on: the delta rows, then ``summary`` (``log:`` sorts
        before them and is not read)."""
        rows = await self._range(match_id, ent.DELTA_PREFIX, "~", None)
        summary = next((r for r in rows if r["RowKey"] == ent.SUMMARY_KEY), None)
        if summary is None:
            raise NotFound(f"match {match_id!r} not found")
        record = summaries.saga_record_from_entity(summary, ent.etag_of(summary.metadata))
        return record, deltas_of(r for r in rows if r["RowKey"].startswith(ent.DELTA_PREFIX))

    async def save(
        self,
        record: SagaRecord,
        saga: Saga,
        events: Sequence[SagaEvent],
        at: datetime,
        deltas: Mapping[str, StatDelta] | None = None,
        began_at: datetime | None = None,
    ) -> SagaRecord:
        """Summary (If-Match) + log rows + delta rows, in one transaction."""
        match_id = record.summary.match_id
        was_finished, finishes = ent.is_finished(record.saga.state), ent.is_finished(saga.state)
        summary = summaries.next_summary(record.summary, saga, at, events, began_at)
        if was_finished and not finishes:  # an operator reopened it (compensation)
            index_etag = await self._index(match_id, summary.accepted_at, published=True)
            summary = replace(summary, index_etag=index_etag)
        seq = record.seq + len(events)
        guard = {
            "mode": UpdateMode.MERGE,
            "etag": record.etag,
            "match_condition": MatchConditions.IfNotModified,
        }
        ops: list[tuple[Any, ...]] = [("update", summaries.saga_fields(saga, seq, summary), guard)]
        ops += [("create", row) for row in log_entities(match_id, record.seq + 1, events, at)]
        ops += [("upsert", row) for row in delta_entities(match_id, deltas or {})]
        checked_size(len(ops))
        try:
            with map_azure_errors():
                result = await submit_transaction(self._table, ops)
        except EntityExists as error:
            # A log row exists although the etag matched: only another saver can do that.
            raise ConcurrencyConflict(f"saga {match_id!r} was saved concurrently") from error
        if finishes and not was_finished:
            await self._unindex_quietly(match_id, summary.index_etag, at)
        return SagaRecord(summary, saga, seq, ent.etag_of(result[0]))

    async def deltas(self, match_id: str) -> dict[str, StatDelta]:
        """The ``p:`` rows as ``{player_id: delta}``."""
        rows = await self._range(match_id, ent.DELTA_PREFIX, "p;", ["RowKey", "data", "deltas"])
        return deltas_of(rows)

    async def log(self, match_id: str) -> list[LogEntry]:
        """The ``log:`` rows in sequence order (RowKeys are zero-padded)."""
        rows = await self._range(match_id, ent.LOG_PREFIX, ent.LOG_END, ["RowKey", "data", "at"])
        entries = []
        for r in rows:
            first, data = int(r["RowKey"][len(ent.LOG_PREFIX) :]), ent.loads(r["data"])
            at = datetime.fromisoformat(r["at"])
            for i, item in enumerate(data if isinstance(data, list) else [data]):
                entries.append(LogEntry(seq=first + i, at=at, event=codec.event_from_dict(item)))
        return entries

    async def mark_published(self, match_id: str) -> None:
        """Merge ``published=True`` (unconditional: it only ever goes False → True)."""
        row = {"PartitionKey": match_id, "RowKey": ent.SUMMARY_KEY, "published": True}
        with map_azure_errors():
            await self._table.update_entity(row, mode=UpdateMode.MERGE)
        await self._flag_published(match_id)

    async def unpublished(self, accepted_before: datetime, limit: int) -> list[str]:
        """Index rows not flagged published, older than the cutoff, checked against their
        summaries (the index may lag them)."""
        found: list[str] = []
        async for row in self._index_rows(accepted_before):
            if row.get("published"):
                continue
            record = await self._check(row)
            if record is None:
                continue
            if record.saga.state is not SagaState.ACCEPTED:
                # It started, so its message was delivered. Not flagged: that would change
                # the row's etag, which the finishing save deletes it by.
                continue
            if record.summary.published:  # crashed between the merge and the flag
                await self._flag_published(record.summary.match_id)
                continue
            found.append(record.summary.match_id)
            if len(found) >= limit:
                break
        return found

    async def open_sagas(
        self, accepted_before: datetime, limit: int, state: SagaState | None = None
    ) -> list[SagaRecord]:
        """Unfinished sagas accepted before the cutoff (in ``state`` if given), read from
        their summaries; index rows of finished or unknown matches are dropped on the way."""
        found: list[SagaRecord] = []
        async for row in self._index_rows(accepted_before):
            record = await self._check(row)
            if record is None or (state is not None and record.saga.state is not state):
                continue
            found.append(record)
            if len(found) >= limit:
                break
        return found

    async def sagas_in_state(self, state: SagaState, limit: int) -> list[SagaRecord]:
        """A filtered scan of the summary rows: for finished states, which have no index
        (operators look at those rarely; open states are cheaper via ``open_sagas``)."""
        with map_azure_errors():
            pages = self._table.query_entities(
                "RowKey eq @summary and state eq @state",
                parameters={"summary": ent.SUMMARY_KEY, "state": state.value},
                results_per_page=min(limit, 1000),
            )
            found: list[SagaRecord] = []
            async for row in pages:
                found.append(summaries.saga_record_from_entity(row, ent.etag_of(row.metadata)))
                if len(found) >= limit:
                    break
        return found

    # ---- the open-saga index -------------------------------------------------------------

    async def _index(self, match_id: str, accepted_at: datetime, published: bool) -> str:
        """Write the match's index row; returns its etag."""
        row = {
            "PartitionKey": ent.open_partition(match_id),
            "RowKey": match_id,
            "accepted_at": accepted_at.isoformat(),
            "indexed_at": datetime.now(UTC).isoformat(),
            "published": published,
        }
        with map_azure_errors():
            meta = await self._table.upsert_entity(row, mode=UpdateMode.REPLACE)
        return ent.etag_of(meta)

    async def _index_rows(self, accepted_before: datetime) -> AsyncIterator[TableEntity]:
        for partition in ent.open_partitions():
            rows = await self._range(
                partition, "", "~", ["RowKey", "accepted_at", "indexed_at", "published"]
            )
            for row in rows:
                if datetime.fromisoformat(row["accepted_at"]) < accepted_before:
                    yield row

    async def _check(self, row: TableEntity) -> SagaRecord | None:
        """The unfinished saga behind an index row, or ``None`` if it is finished or was
        never stored (the POST failed before the summary); then the row is dropped once it
        is old enough that no save of it can still be in flight."""
        match_id = row["RowKey"]
        try:
            record: SagaRecord | None = await self.load(match_id)
        except NotFound:
            record = None
        if record is not None and not ent.is_finished(record.saga.state):
            return record
        indexed = _indexed_at(row)
        if (datetime.now(UTC) - indexed).total_seconds() >= INDEX_SETTLE_S:
            await self._drop_row(match_id, ent.etag_of(row.metadata))
        return None

    async def _flag_published(self, match_id: str) -> None:
        row = {"PartitionKey": ent.open_partition(match_id), "RowKey": match_id, "published": True}
        # Already gone (the saga finished first): nothing to flag.
        with contextlib.suppress(NotFound), map_azure_errors():
            await self._table.update_entity(row, mode=UpdateMode.MERGE)

    async def _drop_row(self, match_id: str, etag: str) -> None:
        """Delete an index row as it was read: a row rewritten since (a reopen) stays."""
        with contextlib.suppress(NotFound, ConcurrencyConflict), map_azure_errors():
            await self._table.delete_entity(
                ent.open_partition(match_id),
                match_id,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )

    async def _unindex_quietly(
        self, match_id: str, index_etag: str | None, finished_at: datetime
    ) -> None:
        """Drop the row of a saga that just finished, unless it was rewritten since this
        summary learnt its etag: an operator may have reopened the saga (voided the match)
        while this delete was on its way, and that row belongs to the compensation. The
        save is durable either way; a row left behind is dropped by a later sweep. A
        summary written before it kept the etag: the row is read, and kept if it was
        written after the finish."""
        try:
            if index_etag is None:
                with map_azure_errors():
                    row = await self._table.get_entity(ent.open_partition(match_id), match_id)
                if _indexed_at(row) > finished_at:
                    return
                index_etag = ent.etag_of(row.metadata)
            await self._drop_row(match_id, index_etag)
        except NotFound:
            return
        except Exception as exc:
            log.warning("match %s: open-saga index row left behind (%s)", match_id, exc)

    async def close(self) -> None:
        """Close the table client."""
        await self._table.close()

    async def _range(self, pk: str, start: str, end: str, select: list[str] | None) -> list[Any]:
        with map_azure_errors():
            pages = self._table.query_entities(
                "PartitionKey eq @pk and RowKey ge @start and RowKey lt @end",
                parameters={"pk": pk, "start": start, "end": end},
                select=select,
            )
            return [row async for row in pages]
