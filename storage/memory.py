"""In-memory adapters with the Table/Blob adapters' semantics and domain errors: markers
are checked before the etag (409 before 412, as in a batch), etags are fresh uuids,
every value is deep-copied in and out so callers cannot mutate stored state. Not durable:
for unit tests and single-process runs."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from app.application.ports import (
    ApplyOutcome,
    HistoryEntry,
    HistoryPage,
    LogEntry,
    PlayerSnapshot,
    RevertOutcome,
    SagaRecord,
    StoredPlacement,
)
from app.domain.errors import ConcurrencyConflict, Conflict, DuplicateMatch, NotFound
from app.domain.model import Match
from app.domain.saga import Saga, SagaEvent, SagaState
from app.domain.stats import ServiceRecord, StatDelta, revert_delta
from storage import entities as ent
from storage import summary_entities as summaries
from storage.blob_archive import canonical_body
from storage.saga_rows import save_size

T = TypeVar("T")


def _copy(value: T) -> T:
    return copy.deepcopy(value)


def _etag() -> str:
    return uuid.uuid4().hex


@dataclass
class _Player:
    record: ServiceRecord | None = None
    etag: str | None = None
    markers: dict[str, tuple[StatDelta, bool]] = field(default_factory=dict)  # key → void
    undone: set[str] = field(default_factory=set)


class InMemoryPlayerStore:
    """``PlayerStore`` in a dict of partitions."""

    def __init__(self) -> None:
        self._players: dict[str, _Player] = {}

    async def load(self, player_id: str) -> PlayerSnapshot:
        """The record and its etag; an empty record with etag ``None`` if there is none."""
        part = self._players.get(player_id)
        if part is None or part.record is None:
            return PlayerSnapshot(ServiceRecord(player_id), None)
        return PlayerSnapshot(_copy(part.record), part.etag)

    async def apply(self, snapshot: PlayerSnapshot, deltas: Sequence[StatDelta]) -> ApplyOutcome:
        """Markers + record at once; markers that exist go to ``already``."""
        if len(deltas) > ent.MAX_BATCH - 1:
            raise ValueError(f"at most {ent.MAX_BATCH - 1} matches per apply, got {len(deltas)}")
        pending, already = ent.unique_by_match(deltas)
        part = self._players.setdefault(snapshot.record.player_id, _Player())
        already += [d.match_id for d in pending if ent.marker_key(d) in part.markers]
        pending = [d for d in pending if ent.marker_key(d) not in part.markers]
        if not pending:
            return ApplyOutcome(snapshot, (), tuple(already))
        self._check(part, snapshot)
        record, fitted = ent.fold(snapshot.record, pending)
        # The rows the table adapter would write, built only to refuse what Azure would.
        ent.record_entity(record)
        for delta in fitted:
            ent.marker_entity(delta, False)
        for delta in fitted:
            part.markers[ent.marker_key(delta)] = (_copy(delta), False)
        part.record, part.etag = _copy(record), _etag()
        applied = tuple(d.match_id for d in pending)
        return ApplyOutcome(PlayerSnapshot(_copy(record), part.etag), applied, tuple(already))

    async def revert(self, snapshot: PlayerSnapshot, delta: StatDelta) -> RevertOutcome:
        """Subtract the match and void its row, or void it ahead of a late apply."""
        part = self._players.setdefault(delta.player_id, _Player())
        key = ent.marker_key(delta)
        if delta.match_id in part.undone:
            return RevertOutcome(snapshot, False)
        if key not in part.markers:
            part.markers[key] = (_copy(delta), True)
            part.undone.add(delta.match_id)
            return RevertOutcome(snapshot, False)
        applied, void = part.markers[key]
        if void:
            part.undone.add(delta.match_id)
            return RevertOutcome(snapshot, False)
        self._check(part, snapshot)
        record = self._replay_played(part, revert_delta(snapshot.record, applied), applied)
        part.markers[key] = (applied, True)
        part.undone.add(delta.match_id)
        part.record, part.etag = _copy(record), _etag()
        return RevertOutcome(PlayerSnapshot(_copy(record), part.etag), True)

    async def history(
        self, player_id: str, limit: int, continuation: str | None = None
    ) -> HistoryPage:
        """Newest first, paged by the last RowKey served."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        after = ent.decode_token(continuation) if continuation else ent.MARKER_PREFIX
        part = self._players.get(player_id, _Player())
        keys = sorted(k for k in part.markers if after < k < ent.MARKER_END)[: limit + 1]
        page = keys[:limit]
        entries = tuple(HistoryEntry(_copy(part.markers[k][0]), part.markers[k][1]) for k in page)
        return HistoryPage(entries, ent.encode_token(page[-1]) if len(keys) > limit else None)

    async def history_row(self, delta: StatDelta) -> HistoryEntry | None:
        """The player's history row of ``delta``'s match, ``None`` if there is none."""
        row = self._players.get(delta.player_id, _Player()).markers.get(ent.marker_key(delta))
        return HistoryEntry(_copy(row[0]), row[1]) if row is not None else None

    async def records(self) -> AsyncIterator[ServiceRecord]:
        """``RecordScan``: every record row, in no particular order."""
        for part in list(self._players.values()):
            if part.record is not None:
                yield _copy(part.record)

    async def close(self) -> None:
        """Nothing to release."""

    @staticmethod
    def _check(part: _Player, snapshot: PlayerSnapshot) -> None:
        if snapshot.etag != part.etag:
            raise ConcurrencyConflict(f"record of {snapshot.record.player_id!r} changed")

    @staticmethod
    def _replay_played(part: _Player, record: ServiceRecord, gone: StatDelta) -> ServiceRecord:
        """First/last played from the remaining non-void matches, if ``gone`` was one."""
        edge = gone.ended_at
        if edge not in (record.first_played, record.last_played):
            return record
        times = [
            d.ended_at
            for d, void in part.markers.values()
            if not void and d.match_id != gone.match_id
        ]
        return replace(
            record,
            first_played=min(times, default=None)
            if edge == record.first_played
            else record.first_played,
            last_played=max(times, default=None)
            if edge == record.last_played
            else record.last_played,
        )


class InMemorySagaLog:
    """``SagaLog`` in dicts keyed by match id."""

    def __init__(self) -> None:
        self._records: dict[str, SagaRecord] = {}
        self._logs: dict[str, list[LogEntry]] = {}
        self._deltas: dict[str, dict[str, StatDelta]] = {}
        # The open-saga index: accepted_at and published, per unfinished match.
        self._open: dict[str, tuple[datetime, bool]] = {}

    async def create(
        self, match: Match, accepted_at: datetime, deltas: Mapping[str, StatDelta]
    ) -> tuple[SagaRecord, bool]:
        """Store the summary and the deltas; an existing match with the same payload hash
        is returned."""
        save_size((), deltas)
        self._open[match.match_id] = (accepted_at, False)
        existing = self._records.get(match.match_id)
        if existing is not None:
            if existing.summary.payload_hash != match.payload_hash():
                raise DuplicateMatch(match.match_id)
            return _copy(existing), False
        record = SagaRecord(
            summaries.new_summary(match, accepted_at), Saga(match.match_id), 0, _etag()
        )
        self._records[match.match_id] = _copy(record)
        self._deltas[match.match_id] = _copy(dict(deltas))
        return record, True

    async def load(self, match_id: str) -> SagaRecord:
        """The stored record; ``NotFound`` if the match is unknown."""
        if match_id not in self._records:
            raise NotFound(f"match {match_id!r} not found")
        return _copy(self._records[match_id])

    async def load_with_deltas(self, match_id: str) -> tuple[SagaRecord, dict[str, StatDelta]]:
        """``load`` and ``deltas``."""
        return await self.load(match_id), await self.deltas(match_id)

    async def save(
        self,
        record: SagaRecord,
        saga: Saga,
        events: Sequence[SagaEvent],
        at: datetime,
        deltas: Mapping[str, StatDelta] | None = None,
        began_at: datetime | None = None,
    ) -> SagaRecord:
        """State, log and deltas at once, guarded by ``record.etag``."""
        save_size(events, deltas)
        match_id = record.summary.match_id
        current = await self.load(match_id)
        if current.etag != record.etag:
            raise ConcurrencyConflict(f"saga {match_id!r} was saved concurrently")
        log = self._logs.setdefault(match_id, [])
        log += [LogEntry(record.seq + i, at, _copy(e)) for i, e in enumerate(events, start=1)]
        self._deltas.setdefault(match_id, {}).update(_copy(dict(deltas or {})))
        summary = summaries.next_summary(current.summary, saga, at, events, began_at)
        saved = SagaRecord(summary, _copy(saga), record.seq + len(events), _etag())
        self._records[match_id] = saved
        if ent.is_finished(saga.state):
            self._open.pop(match_id, None)
        elif ent.is_finished(current.saga.state):
            self._open[match_id] = (summary.accepted_at, True)
        return _copy(saved)

    async def deltas(self, match_id: str) -> dict[str, StatDelta]:
        """The per-player deltas stored with the match."""
        return _copy(self._deltas.get(match_id, {}))

    async def log(self, match_id: str) -> list[LogEntry]:
        """The log, oldest first."""
        return _copy(self._logs.get(match_id, []))

    async def mark_published(self, match_id: str) -> None:
        """Set ``published`` (the etag changes, as a merge does in Table Storage)."""
        current = await self.load(match_id)
        summary = replace(current.summary, published=True)
        self._records[match_id] = replace(current, summary=summary, etag=_etag())
        if match_id in self._open:
            self._open[match_id] = (self._open[match_id][0], True)

    def _indexed(self, accepted_before: datetime) -> list[SagaRecord]:
        found = []
        for match_id, (at, _) in list(self._open.items()):
            record = self._records.get(match_id)
            if record is None or ent.is_finished(record.saga.state):
                del self._open[match_id]
            elif at < accepted_before:
                found.append(_copy(record))
        return found

    async def unpublished(self, accepted_before: datetime, limit: int) -> list[str]:
        """Matches created before ``accepted_before``, not started and never marked
        published."""
        ids = [
            r.summary.match_id
            for r in self._indexed(accepted_before)
            if not r.summary.published and r.saga.state is SagaState.ACCEPTED
        ]
        return ids[:limit]

    async def open_sagas(
        self, accepted_before: datetime, limit: int, state: SagaState | None = None
    ) -> list[SagaRecord]:
        """Unfinished sagas accepted before the cutoff, in ``state`` if given."""
        found = self._indexed(accepted_before)
        return [r for r in found if state is None or r.saga.state is state][:limit]

    async def sagas_in_state(self, state: SagaState, limit: int) -> list[SagaRecord]:
        """Every saga in ``state``."""
        found = [_copy(r) for r in self._records.values() if r.saga.state is state]
        return found[:limit]

    async def close(self) -> None:
        """Nothing to release."""


class InMemoryPayloadArchive:
    """``PayloadArchive`` in a dict of canonical bodies."""

    def __init__(self) -> None:
        self._blobs: dict[tuple[str, str], bytes] = {}

    async def put(self, match: Match) -> None:
        """Store the canonical body once (the hash is part of the key)."""
        self._blobs.setdefault((match.match_id, match.payload_hash()), canonical_body(match))

    async def get(self, match_id: str, payload_hash: str) -> dict[str, Any]:
        """The decoded payload; ``NotFound`` if there is none."""
        body = self._blobs.get((match_id, payload_hash))
        if body is None:
            raise NotFound(f"no payload {payload_hash!r} for match {match_id!r}")
        payload: dict[str, Any] = json.loads(body)
        return payload


class InMemoryPlacementStore:
    """``PlacementStore`` in one attribute."""

    def __init__(self) -> None:
        self._stored: StoredPlacement | None = None

    async def load(self) -> StoredPlacement | None:
        """The stored placement, if any."""
        return self._stored

    async def save(self, stored: StoredPlacement) -> None:
        """Replace the stored placement, unless it is newer than ``stored``."""
        if self._stored is not None and stored.placement.version < self._stored.placement.version:
            raise Conflict(
                f"placement version {stored.placement.version} is older than the stored "
                f"{self._stored.placement.version}"
            )
        self._stored = stored
