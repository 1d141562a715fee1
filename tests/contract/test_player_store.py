"""The ``PlayerStore`` contract. Every adapter's test is a three-line subclass."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.application.ports import PlayerSnapshot, PlayerStore
from app.domain.errors import ConcurrencyConflict, PermanentError
from app.domain.model import Outcome
from app.domain.stats import (
    MAX_RECORD_MEDALS,
    MAX_RECORD_MODES,
    MAX_RECORD_WEAPONS,
    OTHER,
    ServiceRecord,
    StatDelta,
    delta_counters,
    sum_deltas,
)
from devstack.processes import Azurite
from storage.memory import InMemoryPlayerStore
from storage.tables import open_table_storage
from tests.support.azure import STORAGE_ENV, azure_table_storage, connection_string

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def delta(pid: str, n: int, kills: int = 5) -> StatDelta:
    """Match ``m{n}`` of player ``pid``, ending ``n`` minutes after T0."""
    outcome = (Outcome.WIN, Outcome.LOSS, Outcome.TIE)[n % 3]
    return StatDelta(
        match_id=f"m{n}",
        player_id=pid,
        mode=("slayer", "ctf")[n % 2],
        map="haven",
        ended_at=T0 + timedelta(minutes=n),
        outcome=outcome,
        team="red",
        counters=delta_counters(outcome, {"kills": kills + n, "deaths": 3, "score": 100 * n}),
        medals={"double_kill": 1 + n % 2} if n % 2 else {},
        weapons={"dmr": {"kills": 2, "headshots": 1}, f"w{n}": {"kills": 1, "headshots": 0}},
    )


class PlayerStoreContract:
    """Behaviour every ``PlayerStore`` adapter must have."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[PlayerStore]:
        raise NotImplementedError
        yield

    @pytest.fixture
    def pid(self, unique: str) -> str:
        return f"p{unique}"

    async def history_ids(self, store: PlayerStore, pid: str) -> list[tuple[str, bool]]:
        page = await store.history(pid, 100)
        return [(e.delta.match_id, e.void) for e in page.entries]

    async def test_unknown_player_is_an_empty_record(self, store: PlayerStore, pid: str) -> None:
        snap = await store.load(pid)
        assert snap.record == ServiceRecord(pid) and snap.etag is None
        assert (await store.history(pid, 5)).entries == ()

    async def test_apply_to_a_new_player(self, store: PlayerStore, pid: str) -> None:
        out = await store.apply(await store.load(pid), [delta(pid, 1)])
        assert out.applied == ("m1",) and out.already == ()
        assert out.snapshot.record == sum_deltas(pid, [delta(pid, 1)])
        assert out.snapshot.etag is not None
        assert await store.load(pid) == out.snapshot

    async def test_apply_twice_is_already_and_changes_nothing(
        self, store: PlayerStore, pid: str
    ) -> None:
        first = await store.apply(await store.load(pid), [delta(pid, 1)])
        again = await store.apply(first.snapshot, [delta(pid, 1)])
        assert again.applied == () and again.already == ("m1",)
        assert await store.load(pid) == first.snapshot
        assert await self.history_ids(store, pid) == [("m1", False)]

    async def test_several_matches_in_one_call(self, store: PlayerStore, pid: str) -> None:
        deltas = [delta(pid, n) for n in (1, 2, 3)]
        out = await store.apply(await store.load(pid), deltas)
        assert out.applied == ("m1", "m2", "m3")
        assert (await store.load(pid)).record == sum_deltas(pid, deltas)
        assert await self.history_ids(store, pid) == [("m3", False), ("m2", False), ("m1", False)]

    async def test_applied_and_already_in_one_call(self, store: PlayerStore, pid: str) -> None:
        first = await store.apply(await store.load(pid), [delta(pid, 1)])
        out = await store.apply(first.snapshot, [delta(pid, 1), delta(pid, 2)])
        assert out.applied == ("m2",) and out.already == ("m1",)
        assert out.snapshot.record == sum_deltas(pid, [delta(pid, 1), delta(pid, 2)])

    async def test_stale_etag_is_a_conflict_and_writes_nothing(
        self, store: PlayerStore, pid: str
    ) -> None:
        empty = await store.load(pid)
        s1 = (await store.apply(empty, [delta(pid, 1)])).snapshot
        with pytest.raises(ConcurrencyConflict):  # the record was created meanwhile (409)
            await store.apply(empty, [delta(pid, 2)])
        s2 = (await store.apply(s1, [delta(pid, 2)])).snapshot
        with pytest.raises(ConcurrencyConflict):  # the record changed meanwhile (412)
            await store.apply(s1, [delta(pid, 3)])
        assert await store.load(pid) == s2
        assert [m for m, _ in await self.history_ids(store, pid)] == ["m2", "m1"]

    async def test_of_two_concurrent_writers_one_wins(self, store: PlayerStore, pid: str) -> None:
        for first in (1, 3):  # a new player (both create the record), then an existing one
            snap = await store.load(pid)
            results = await asyncio.gather(
                store.apply(snap, [delta(pid, first)]),
                store.apply(snap, [delta(pid, first + 1)]),
                return_exceptions=True,
            )
            kinds = sorted(type(r).__name__ for r in results)
            assert kinds == ["ApplyOutcome", "ConcurrencyConflict"], results
        assert len((await store.history(pid, 10)).entries) == 2

    async def test_existing_marker_wins_over_a_stale_etag(
        self, store: PlayerStore, pid: str
    ) -> None:
        empty = await store.load(pid)
        s1 = (await store.apply(empty, [delta(pid, 1)])).snapshot
        s2 = (await store.apply(s1, [delta(pid, 2)])).snapshot
        for stale in (empty, s1):
            out = await store.apply(stale, [delta(pid, 1)])
            assert out.already == ("m1",) and out.applied == ()
        assert await store.load(pid) == s2

    async def test_a_blind_insert_on_a_known_player_is_a_conflict_not_a_replay(
        self, store: PlayerStore, pid: str
    ) -> None:
        # A grain's first apply may write as a new player's without reading (etag None: a
        # create of the record). On a known player that create's 409 must be a conflict
        # (read and retry), never taken for a marker's (a match reported applied, lost).
        s1 = (await store.apply(await store.load(pid), [delta(pid, 1)])).snapshot
        blind = PlayerSnapshot(ServiceRecord(pid), None)
        for batch in ([2], [2, 3, 4], [1, 2, 3]):  # the last one holds a replay too
            with pytest.raises(ConcurrencyConflict):
                await store.apply(blind, [delta(pid, n) for n in batch])
            assert await store.load(pid) == s1
            assert await self.history_ids(store, pid) == [("m1", False)]
        out = await store.apply(blind, [delta(pid, 1)])  # a replay alone: found applied
        assert out.already == ("m1",) and out.applied == ()
        assert await store.load(pid) == s1

    async def test_revert_after_apply_restores_the_record(
        self, store: PlayerStore, pid: str
    ) -> None:
        applied = await store.apply(await store.load(pid), [delta(pid, 1)])
        out = await store.revert(applied.snapshot, delta(pid, 1))
        assert out.reverted
        record, empty = (await store.load(pid)).record, ServiceRecord(pid)
        assert record.counters == empty.counters and record.medals == empty.medals
        assert record.weapons == empty.weapons and record.modes == empty.modes
        assert record == empty  # first/last played recomputed too
        assert await self.history_ids(store, pid) == [("m1", True)]

    async def test_revert_recomputes_first_and_last_played(
        self, store: PlayerStore, pid: str
    ) -> None:
        deltas = [delta(pid, n) for n in (1, 2, 3)]
        snap = (await store.apply(await store.load(pid), deltas)).snapshot
        snap = (await store.revert(snap, deltas[2])).snapshot  # the newest
        snap = (await store.revert(snap, deltas[0])).snapshot  # the oldest
        assert snap.record == sum_deltas(pid, [deltas[1]])
        assert await store.load(pid) == snap

    async def test_revert_before_apply_voids_the_late_apply(
        self, store: PlayerStore, pid: str
    ) -> None:
        empty = await store.load(pid)
        out = await store.revert(empty, delta(pid, 1))
        assert not out.reverted
        late = await store.apply(await store.load(pid), [delta(pid, 1)])
        assert late.already == ("m1",) and late.applied == ()
        assert await store.load(pid) == empty
        assert await self.history_ids(store, pid) == [("m1", True)]

    async def test_history_row_is_what_was_applied_or_voided(
        self, store: PlayerStore, pid: str
    ) -> None:
        assert await store.history_row(delta(pid, 1)) is None
        applied = replace(delta(pid, 1), counters={**delta(pid, 1).counters, "kills": 9})
        snap = (await store.apply(await store.load(pid), [applied])).snapshot
        row = await store.history_row(delta(pid, 1))  # found by its match, not its data
        assert row is not None and row.delta == applied and not row.void
        await store.revert(snap, delta(pid, 1))
        row = await store.history_row(delta(pid, 1))
        assert row is not None and row.void

    async def test_revert_twice_reverts_once(self, store: PlayerStore, pid: str) -> None:
        snap = (await store.apply(await store.load(pid), [delta(pid, 1), delta(pid, 2)])).snapshot
        first = await store.revert(snap, delta(pid, 1))
        second = await store.revert(first.snapshot, delta(pid, 1))
        assert first.reverted and not second.reverted
        assert (await store.load(pid)).record == sum_deltas(pid, [delta(pid, 2)])

    async def test_revert_with_stale_etag_is_a_conflict(self, store: PlayerStore, pid: str) -> None:
        s1 = (await store.apply(await store.load(pid), [delta(pid, 1)])).snapshot
        s2 = (await store.apply(s1, [delta(pid, 2)])).snapshot
        with pytest.raises(ConcurrencyConflict):
            await store.revert(s1, delta(pid, 1))
        assert await store.load(pid) == s2
        assert ("m1", False) in await self.history_ids(store, pid)
        assert (await store.revert(s2, delta(pid, 1))).reverted

    async def test_history_pages_newest_first_under_inserts(
        self, store: PlayerStore, pid: str
    ) -> None:
        snap = await store.load(pid)
        for start in (0, 10, 20):
            batch = [delta(pid, n) for n in range(start, start + 10)]
            snap = (await store.apply(snap, batch)).snapshot
        seen: list[str] = []
        token: str | None = None
        pages = 0
        newer = 100
        while True:
            page = await store.history(pid, 7, token)
            pages += 1
            seen += [e.delta.match_id for e in page.entries]
            # A newer match lands between pages: it sorts before every later page.
            snap = (await store.apply(snap, [delta(pid, newer)])).snapshot
            newer += 1
            token = page.continuation
            if token is None:
                break
        assert seen == [f"m{n}" for n in range(29, -1, -1)]
        assert pages == 5

    async def test_bad_continuation_is_a_value_error(self, store: PlayerStore, pid: str) -> None:
        forged = base64.urlsafe_b64encode(b"record").decode()
        for token in ("not base64!", forged, "%%%"):
            with pytest.raises(ValueError, match="continuation"):
                await store.history(pid, 5, token)

    async def test_too_many_matches_for_one_batch(self, store: PlayerStore, pid: str) -> None:
        with pytest.raises(ValueError):
            await store.apply(await store.load(pid), [delta(pid, n) for n in range(100)])

    async def test_a_flood_of_new_names_keeps_the_record_writable_and_exact(
        self, store: PlayerStore, pid: str
    ) -> None:
        # Each match names 64 new 64-character weapons and medals and a new mode: unbounded,
        # the record row passed Table Storage's 64 KiB property after a few of them and the
        # player could never be updated again.
        floods = [flood(pid, n) for n in range(MAX_RECORD_MODES + 6)]
        snap = await store.load(pid)
        for d in floods:
            out = await store.apply(snap, [d])
            assert out.applied == (d.match_id,)
            snap = out.snapshot
        record = (await store.load(pid)).record
        assert record == snap.record == sum_deltas(pid, floods)
        assert_totals(record, floods)
        # A void subtracts what the record took, wherever it went; the rest stays exact.
        for gone in (floods[-1], floods[3], floods[0]):
            out_r = await store.revert(await store.load(pid), gone)
            assert out_r.reverted
            floods.remove(gone)
        assert_totals((await store.load(pid)).record, floods)
        page = await store.history(pid, 100)
        assert {e.delta.match_id for e in page.entries if not e.void} == {
            d.match_id for d in floods
        }

    async def test_a_record_past_the_property_limit_is_refused_whole(
        self, store: PlayerStore, pid: str
    ) -> None:
        # A record with far more names than its bounds (written before they existed) cannot
        # be stored: the adapter refuses it before writing anything, the same on every store.
        await store.apply(await store.load(pid), [delta(pid, 1)])
        snap = await store.load(pid)
        huge = {f"{'w' * 60}{i:04d}": {"kills": 1, "headshots": 0} for i in range(400)}
        bloated = replace(snap.record, weapons=huge)
        with pytest.raises(PermanentError, match="holds at most"):
            await store.apply(PlayerSnapshot(bloated, snap.etag), [delta(pid, 2)])
        assert await store.load(pid) == snap
        assert [m for m, _ in await self.history_ids(store, pid)] == ["m1"]


def flood(pid: str, n: int) -> StatDelta:
    """Match ``f{n}``: 64 weapons and 64 medals of its own, all 64 characters long."""
    outcome = Outcome.WIN
    return StatDelta(
        match_id=f"f{n}",
        player_id=pid,
        mode=f"mode{n:02d}".ljust(64, "x"),
        map="haven",
        ended_at=T0 + timedelta(minutes=n),
        outcome=outcome,
        team=None,
        counters=delta_counters(outcome, {"kills": 64 * 2, "deaths": 3}),
        medals={f"{n:03d}{i:03d}".ljust(64, "m"): 1 + i % 3 for i in range(64)},
        weapons={f"{n:03d}{i:03d}".ljust(64, "w"): {"kills": 2, "headshots": 1} for i in range(64)},
    )


def assert_totals(record: ServiceRecord, deltas: list[StatDelta]) -> None:
    """What counts is exact whatever the bounds did: the counters, each kind's total, every
    name the record kept, and the number of names it kept."""
    assert record.counters["matches"] == len(deltas)
    assert record.counters["kills"] == sum(d.counters["kills"] for d in deltas)
    assert sum(w["kills"] for w in record.weapons.values()) == sum(
        w["kills"] for d in deltas for w in d.weapons.values()
    )
    assert sum(record.medals.values()) == sum(v for d in deltas for v in d.medals.values())
    assert sum(m["matches"] for m in record.modes.values()) == len(deltas)
    assert len([n for n in record.weapons if n != OTHER]) <= MAX_RECORD_WEAPONS
    assert len([n for n in record.medals if n != OTHER]) <= MAX_RECORD_MEDALS
    assert len([n for n in record.modes if n != OTHER]) <= MAX_RECORD_MODES
    for name, line in record.weapons.items():
        if name != OTHER:
            assert line == {
                "kills": 2 * sum(name in d.weapons for d in deltas),
                "headshots": line["headshots"],
            }


class TestInMemoryPlayerStore(PlayerStoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[PlayerStore]:
        yield InMemoryPlayerStore()


@pytest.mark.azurite
class TestTablePlayerStore(PlayerStoreContract):
    @pytest.fixture
    async def store(self, azurite: Azurite, unique: str) -> AsyncIterator[PlayerStore]:
        storage = await open_table_storage(azurite.connection_string, f"t{unique}")
        yield storage.players
        await storage.close()


@pytest.mark.azure
class TestTablePlayerStoreOnAzure(PlayerStoreContract):
    """The same contract on real Azure Storage (see ``tests.support.azure``)."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[PlayerStore]:
        async with azure_table_storage(connection_string(STORAGE_ENV)) as storage:
            yield storage.players
