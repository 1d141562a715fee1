"""The ``SagaLog`` contract. Every adapter's test is a three-line subclass."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from app.application.messages import carried_start, match_completed
from app.application.ports import CarriedStart, SagaLog, SagaRecord
from app.domain.aggregation import aggregate
from app.domain.errors import ConcurrencyConflict, DuplicateMatch, NotFound
from app.domain.model import Match
from app.domain.retry import RetryPolicy
from app.domain.saga import (
    CompensationStarted,
    PlayerApplied,
    PlayerFailed,
    SagaEvent,
    SagaStarted,
    SagaState,
    transition,
)
from app.domain.validation import parse_match
from devstack.processes import Azurite
from storage.entities import open_partition
from storage.memory import InMemorySagaLog
from storage.table_sagas import TableSagaLog
from storage.tables import open_table_storage
from tests.support.azure import STORAGE_ENV, azure_table_storage, connection_string
from tests.support.matches import random_match

POLICY = RetryPolicy()
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_match(match_id: str, seed: int = 1, size: int = 3) -> Match:
    rng = random.Random(seed)
    players = [f"{match_id}-p{i}" for i in range(max(size, 8))]
    body = random_match(rng, match_id, players, size=size)
    return parse_match(body, now=None)


async def create(sagas: SagaLog, match: Match, at: datetime = AT) -> tuple[SagaRecord, bool]:
    return await sagas.create(match, at, aggregate(match))


async def start(sagas: SagaLog, match: Match) -> SagaRecord:
    record, _ = await create(sagas, match)
    step = transition(record.saga, SagaStarted(match.player_ids), POLICY)
    return await sagas.save(record, step.saga, step.events, AT)


class SagaLogContract:
    """Behaviour every ``SagaLog`` adapter must have."""

    @pytest.fixture
    async def sagas(self) -> AsyncIterator[SagaLog]:
        raise NotImplementedError
        yield

    @pytest.fixture
    def match(self, unique: str) -> Match:
        return make_match(f"m{unique}")

    async def test_create_then_load(self, sagas: SagaLog, match: Match) -> None:
        record, created = await create(sagas, match, AT)
        assert created and record.seq == 0 and record.etag
        assert record.saga.state is SagaState.ACCEPTED and record.saga.players == {}
        s = record.summary
        assert (s.match_id, s.mode, s.map, s.player_ids) == (
            match.match_id,
            match.mode,
            match.map,
            match.player_ids,
        )
        assert (s.started_at, s.ended_at, s.accepted_at) == (match.started_at, match.ended_at, AT)
        assert s.payload_hash == match.payload_hash() and not s.published
        assert s.finished_at is None
        assert await sagas.load(match.match_id) == record
        assert await sagas.deltas(match.match_id) == aggregate(match)
        assert await sagas.load_with_deltas(match.match_id) == (record, aggregate(match))

    async def test_create_is_idempotent(self, sagas: SagaLog, match: Match) -> None:
        first, _ = await create(sagas, match, AT)
        again, created = await create(sagas, match, AT + timedelta(minutes=5))
        assert not created and again == first

    async def test_create_with_another_body_is_a_duplicate(
        self, sagas: SagaLog, match: Match
    ) -> None:
        await create(sagas, match, AT)
        other = make_match(match.match_id, seed=2)
        assert other.payload_hash() != match.payload_hash()
        with pytest.raises(DuplicateMatch):
            await create(sagas, other, AT)

    async def test_unknown_match_is_not_found(self, sagas: SagaLog, unique: str) -> None:
        with pytest.raises(NotFound):
            await sagas.load(f"nope{unique}")
        with pytest.raises(NotFound):
            await sagas.mark_published(f"nope{unique}")
        with pytest.raises(NotFound):
            await sagas.load_with_deltas(f"nope{unique}")
        assert await sagas.deltas(f"nope{unique}") == {}
        assert await sagas.log(f"nope{unique}") == []

    async def test_save_round_trips_state_log_and_deltas(
        self, sagas: SagaLog, match: Match
    ) -> None:
        saved = await start(sagas, match)
        assert saved.saga.state is SagaState.RUNNING and saved.seq == 1
        assert await sagas.load(match.match_id) == saved
        assert await sagas.deltas(match.match_id) == aggregate(match)
        assert await sagas.load_with_deltas(match.match_id) == (saved, aggregate(match))
        [entry] = await sagas.log(match.match_id)
        assert (entry.seq, entry.at, entry.event) == (1, AT, SagaStarted(match.player_ids))

    async def test_a_match_stored_without_deltas_gets_them_with_a_save(
        self, sagas: SagaLog, match: Match
    ) -> None:
        # As stored before the deltas came with the match: its first save writes them.
        record, _ = await sagas.create(match, AT, {})
        assert await sagas.load_with_deltas(match.match_id) == (record, {})
        step = transition(record.saga, SagaStarted(match.player_ids), POLICY)
        saved = await sagas.save(record, step.saga, step.events, AT, aggregate(match))
        assert await sagas.load_with_deltas(match.match_id) == (saved, aggregate(match))

    async def test_save_with_a_stale_etag_is_a_conflict(self, sagas: SagaLog, match: Match) -> None:
        created, _ = await create(sagas, match, AT)
        saved = await start(sagas, match)
        step = transition(saved.saga, PlayerApplied(match.player_ids[0]), POLICY)
        with pytest.raises(ConcurrencyConflict):
            await sagas.save(created, step.saga, step.events, AT)
        assert await sagas.load(match.match_id) == saved
        assert len(await sagas.log(match.match_id)) == 1

    async def test_log_is_in_order_and_completion_sets_finished_at(
        self, sagas: SagaLog, match: Match
    ) -> None:
        record = await start(sagas, match)
        for i, pid in enumerate(match.player_ids, start=1):
            step = transition(record.saga, PlayerApplied(pid), POLICY)
            record = await sagas.save(record, step.saga, step.events, AT + timedelta(seconds=i))
        done_at = AT + timedelta(seconds=len(match.player_ids))
        assert record.saga.state is SagaState.COMPLETED
        assert record.summary.finished_at == done_at
        loaded = await sagas.load(match.match_id)
        assert loaded == record and loaded.saga.applied_count == len(match.player_ids)
        entries = await sagas.log(match.match_id)
        assert [e.seq for e in entries] == list(range(1, record.seq + 1))
        names = [type(e.event).__name__ for e in entries]
        assert names == ["SagaStarted"] + ["PlayerApplied"] * 3 + ["SagaCompleted"]
        assert entries[-1].at == done_at

    async def test_began_at_is_when_the_saga_or_its_compensation_started(
        self, sagas: SagaLog, match: Match
    ) -> None:
        created, _ = await create(sagas, match, AT)
        assert created.summary.began_at is None
        # The start is saved with its first round, after the run began.
        step = transition(created.saga, SagaStarted(match.player_ids), POLICY)
        saved_at = AT + timedelta(seconds=2)
        record = await sagas.save(created, step.saga, step.events, saved_at, None, AT)
        assert (record.summary.began_at, record.summary.updated_at) == (AT, saved_at)
        step = transition(record.saga, PlayerApplied(match.player_ids[0]), POLICY)
        record = await sagas.save(record, step.saga, step.events, AT + timedelta(seconds=5))
        assert record.summary.began_at == AT  # other steps keep it
        voided_at = AT + timedelta(seconds=9)
        step = transition(record.saga, CompensationStarted("voided"), POLICY)
        record = await sagas.save(record, step.saga, step.events, voided_at)
        assert record.summary.began_at == voided_at
        assert await sagas.load(match.match_id) == record

    async def test_a_start_says_the_match_was_published(self, sagas: SagaLog, match: Match) -> None:
        later = AT + timedelta(hours=1)
        await create(sagas, match)
        assert match.match_id in await sagas.unpublished(later, 1000)
        record = await start(sagas, match)
        assert record.summary.published and (await sagas.load(match.match_id)) == record
        assert match.match_id not in await sagas.unpublished(later, 1000)

    async def test_mark_published_survives_later_saves(self, sagas: SagaLog, match: Match) -> None:
        await create(sagas, match, AT)
        await sagas.mark_published(match.match_id)
        record = await sagas.load(match.match_id)
        assert record.summary.published
        step = transition(record.saga, SagaStarted(match.player_ids), POLICY)
        await sagas.save(record, step.saga, step.events, AT)
        assert (await sagas.load(match.match_id)).summary.published
        assert (await create(sagas, match, AT))[0].summary.published

    async def test_a_record_carried_by_a_message_saves_as_the_created_one(
        self, sagas: SagaLog, match: Match
    ) -> None:
        # The saga start message carries what ``create`` returned, through JSON: its etag
        # is still the lease of the first save, and the saved summary is the stored one's.
        created, _ = await sagas.create(match, AT, {})
        message = match_completed(match.match_id, CarriedStart(created, match.canonical_json()))
        carried = carried_start(json.loads(json.dumps(dict(message.body))))
        assert carried is not None and carried.record == created
        step = transition(carried.record.saga, SagaStarted(match.player_ids), POLICY)
        saved = await sagas.save(carried.record, step.saga, step.events, AT, aggregate(match))
        assert await sagas.load_with_deltas(match.match_id) == (saved, aggregate(match))
        assert saved.summary.published and saved.summary.began_at == AT

    async def test_a_carried_record_is_stale_once_the_saga_moved_on(
        self, sagas: SagaLog, match: Match
    ) -> None:
        created, _ = await sagas.create(match, AT, {})
        carried = carried_start(match_completed(match.match_id, CarriedStart(created)).body)
        assert carried is not None
        await sagas.mark_published(match.match_id)  # the outbox sweeper's flag
        step = transition(carried.record.saga, SagaStarted(match.player_ids), POLICY)
        with pytest.raises(ConcurrencyConflict):
            await sagas.save(carried.record, step.saga, step.events, AT, aggregate(match))
        assert (await sagas.load(match.match_id)).saga.state is SagaState.ACCEPTED

    async def test_a_save_over_one_batch_is_refused(self, sagas: SagaLog, match: Match) -> None:
        record, _ = await create(sagas, match, AT)
        # Events share rows as far as their size allows: these need a row each.
        events = [PlayerFailed(f"x{i}", "e" * 29_000) for i in range(100)]
        with pytest.raises(ValueError):
            await sagas.save(record, record.saga, events, AT)

    async def test_a_save_of_many_events_and_big_deltas_round_trips(
        self, sagas: SagaLog, unique: str
    ) -> None:
        # 32 players with 64 weapons and 64 medals each: the deltas need several rows.
        match = make_match(f"big{unique}", seed=4, size=32)
        deltas = {
            pid: replace(
                d,
                weapons={f"weapon_{w:02d}": {"kills": w, "headshots": 0} for w in range(64)},
                medals={f"medal_{m:02d}": m + 1 for m in range(64)},
            )
            for pid, d in aggregate(match).items()
        }
        record, _ = await sagas.create(match, AT, deltas)
        assert await sagas.deltas(match.match_id) == deltas
        step = transition(record.saga, SagaStarted(match.player_ids), POLICY)
        record = await sagas.save(record, step.saga, step.events, AT)
        assert await sagas.load_with_deltas(match.match_id) == (record, deltas)
        events = [PlayerApplied(pid) for pid in match.player_ids]
        saga = record.saga
        for event in events:
            saga = transition(saga, event, POLICY).saga
        record = await sagas.save(record, saga, events, AT)
        entries = await sagas.log(match.match_id)
        assert [e.seq for e in entries] == list(range(1, 34)) and record.seq == 33
        assert [e.event for e in entries[1:]] == events

    async def test_created_and_unpublished_is_found_until_published(
        self, sagas: SagaLog, match: Match
    ) -> None:
        await create(sagas, match, AT)
        later = AT + timedelta(seconds=1)
        assert match.match_id in await sagas.unpublished(later, 1000)
        assert match.match_id not in await sagas.unpublished(AT, 1000)  # too recent
        await sagas.mark_published(match.match_id)
        assert match.match_id not in await sagas.unpublished(later, 1000)

    async def test_unpublished_respects_the_limit(self, sagas: SagaLog, unique: str) -> None:
        for i in range(3):
            await create(sagas, make_match(f"m{unique}{i}", seed=i), AT)
        assert len(await sagas.unpublished(AT + timedelta(seconds=1), 2)) == 2

    async def test_a_repost_of_a_published_match_is_not_unpublished(
        self, sagas: SagaLog, match: Match
    ) -> None:
        await create(sagas, match, AT)
        await sagas.mark_published(match.match_id)
        _, created = await create(sagas, match, AT + timedelta(seconds=5))
        assert not created
        assert match.match_id not in await sagas.unpublished(AT + timedelta(hours=1), 1000)

    async def test_open_sagas_follow_the_saga_until_it_finishes(
        self, sagas: SagaLog, match: Match
    ) -> None:
        later = AT + timedelta(seconds=1)

        def ids(records: list[SagaRecord]) -> set[str]:
            return {r.summary.match_id for r in records}

        await create(sagas, match, AT)
        assert match.match_id not in ids(await sagas.open_sagas(AT, 1000))  # too recent
        assert match.match_id in ids(await sagas.open_sagas(later, 1000, SagaState.ACCEPTED))
        record = await start(sagas, match)
        assert match.match_id in ids(await sagas.open_sagas(later, 1000, SagaState.RUNNING))
        assert match.match_id not in ids(await sagas.open_sagas(later, 1000, SagaState.ACCEPTED))
        record = await self._fold(sagas, record, [PlayerApplied(p) for p in match.player_ids])
        assert record.saga.state is SagaState.COMPLETED
        assert match.match_id not in ids(await sagas.open_sagas(later, 1000))
        assert match.match_id in ids(await sagas.sagas_in_state(SagaState.COMPLETED, 1000))
        # Voiding a completed match reopens it until the compensation ends.
        record = await self._fold(sagas, record, [CompensationStarted("cheating")])
        assert match.match_id in ids(await sagas.open_sagas(later, 1000, SagaState.COMPENSATING))
        assert match.match_id not in ids(await sagas.sagas_in_state(SagaState.COMPLETED, 1000))

    async def test_open_sagas_respect_the_limit(self, sagas: SagaLog, unique: str) -> None:
        for i in range(3):
            await create(sagas, make_match(f"m{unique}{i}", seed=i), AT)
        assert len(await sagas.open_sagas(AT + timedelta(seconds=1), 2)) == 2

    @staticmethod
    async def _fold(
        sagas: SagaLog, record: SagaRecord, facts: list[SagaEvent], at: datetime = AT
    ) -> SagaRecord:
        saga, events = record.saga, []
        for fact in facts:
            step = transition(saga, fact, POLICY)
            saga, events = step.saga, events + list(step.events)
        return await sagas.save(record, saga, events, at)


class TestInMemorySagaLog(SagaLogContract):
    @pytest.fixture
    async def sagas(self) -> AsyncIterator[SagaLog]:
        yield InMemorySagaLog()


@pytest.mark.azurite
class TestTableSagaLog(SagaLogContract):
    @pytest.fixture
    async def sagas(self, azurite: Azurite, unique: str) -> AsyncIterator[SagaLog]:
        storage = await open_table_storage(azurite.connection_string, f"t{unique}")
        yield storage.sagas
        await storage.close()

    async def test_a_sweep_while_a_finished_saga_reopens_keeps_it_indexed(
        self, sagas: SagaLog, match: Match
    ) -> None:
        assert isinstance(sagas, TableSagaLog)
        record = await start(sagas, match)
        record = await self._fold(sagas, record, [PlayerApplied(p) for p in match.player_ids])
        later = datetime.now(UTC) + timedelta(days=1)
        write_index = sagas._index

        async def index_then_sweep(*args: Any, **kwargs: Any) -> None:
            await write_index(*args, **kwargs)
            # A sweeper between the index row and the summary: the summary still says
            # completed, but the row is young, so it must stay.
            assert await sagas.open_sagas(later, 1000) == []

        sagas._index = index_then_sweep  # type: ignore[method-assign]
        record = await self._fold(sagas, record, [CompensationStarted("voided")])
        assert [r.summary.match_id for r in await sagas.open_sagas(later, 1000)] == [match.match_id]

    async def test_a_late_delete_of_a_finished_saga_spares_its_reopened_row(
        self, sagas: SagaLog, match: Match
    ) -> None:
        assert isinstance(sagas, TableSagaLog)
        record = await start(sagas, match)
        delayed: list[tuple[str | None, datetime]] = []

        async def hold(match_id: str, etag: str | None, finished_at: datetime) -> None:
            delayed.append((etag, finished_at))  # the delete is still on its way

        unindex, sagas._unindex_quietly = sagas._unindex_quietly, hold  # type: ignore[method-assign]
        facts: list[SagaEvent] = [PlayerApplied(p) for p in match.player_ids]
        record = await self._fold(sagas, record, facts, datetime.now(UTC))
        assert record.saga.state is SagaState.COMPLETED and len(delayed) == 1
        sagas._unindex_quietly = unindex  # type: ignore[method-assign]
        record = await self._fold(sagas, record, [CompensationStarted("voided")])
        await unindex(match.match_id, *delayed[0])  # arrives after the reopen
        later = datetime.now(UTC) + timedelta(days=1)
        assert [r.summary.match_id for r in await sagas.open_sagas(later, 1000)] == [match.match_id]

    async def test_a_finished_saga_leaves_no_index_row(self, sagas: SagaLog, match: Match) -> None:
        assert isinstance(sagas, TableSagaLog)
        record = await start(sagas, match)
        applied: list[SagaEvent] = [PlayerApplied(p) for p in match.player_ids]
        await self._fold(sagas, record, applied, datetime.now(UTC))
        with pytest.raises(ResourceNotFoundError):
            await sagas._table.get_entity(open_partition(match.match_id), match.match_id)

    async def test_a_summary_without_the_index_etag_still_drops_its_row(
        self, sagas: SagaLog, match: Match
    ) -> None:
        # Summaries written before they kept the index row's etag: the row is read first.
        assert isinstance(sagas, TableSagaLog)
        record = await start(sagas, match)
        assert record.summary.index_etag
        record = replace(record, summary=replace(record.summary, index_etag=None))
        applied: list[SagaEvent] = [PlayerApplied(p) for p in match.player_ids]
        await self._fold(sagas, record, applied, datetime.now(UTC))
        with pytest.raises(ResourceNotFoundError):
            await sagas._table.get_entity(open_partition(match.match_id), match.match_id)


@pytest.mark.azure
class TestTableSagaLogOnAzure(TestTableSagaLog):
    """The same contract on real Azure Storage (see ``tests.support.azure``)."""

    @pytest.fixture
    async def sagas(self) -> AsyncIterator[SagaLog]:
        async with azure_table_storage(connection_string(STORAGE_ENV)) as storage:
            yield storage.sagas
