"""The ``BoardSnapshots`` and ``RecordScan`` contracts. Every adapter's test is a
three-line subclass."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import pytest
from azure.data.tables import TableServiceClient

from app.application.ports import BoardSnapshots, PlayerSnapshot, PlayerStore, RecordScan
from app.domain.leaderboards import BoardUpdate, ModeBoards
from app.domain.stats import ServiceRecord
from devstack.processes import Azurite
from storage import table_players
from storage.memory import InMemoryPlayerStore
from storage.memory_boards import InMemoryBoardSnapshots
from storage.tables import open_table_storage
from tests.support.boards import rated


def boards(mode: str, players: int) -> dict[str, object]:
    modes = ModeBoards(mode)
    for i in range(players):
        values = {"rating": i / 3, "kills": float(i), "wins": float(i % 4), "kd": i / 7}
        modes.apply(BoardUpdate(mode, f"p-{i}", values))
    return modes.to_snapshot()


class BoardSnapshotsContract:
    """Behaviour every ``BoardSnapshots`` adapter must have."""

    @pytest.fixture
    async def snapshots(self) -> AsyncIterator[BoardSnapshots]:
        raise NotImplementedError
        yield

    async def test_a_snapshot_reads_back_as_saved(self, snapshots: BoardSnapshots) -> None:
        saved = boards("slayer", 500)
        await snapshots.save("slayer", saved)
        assert await snapshots.load("slayer") == saved

    async def test_a_save_replaces_the_modes_snapshot_only(self, snapshots: BoardSnapshots) -> None:
        await snapshots.save("slayer", boards("slayer", 3))
        await snapshots.save("ctf", boards("ctf", 2))
        await snapshots.save("slayer", boards("slayer", 1))
        assert await snapshots.load("slayer") == boards("slayer", 1)
        assert await snapshots.load("ctf") == boards("ctf", 2)
        assert await snapshots.modes() == ["ctf", "slayer"]

    async def test_a_mode_without_snapshot_loads_none(self, snapshots: BoardSnapshots) -> None:
        assert await snapshots.load("oddball") is None
        assert await snapshots.modes() == []

    async def test_what_cannot_be_stored_is_refused(self, snapshots: BoardSnapshots) -> None:
        for bad in ("", "a/b", "-x", "m" * 65):
            with pytest.raises(ValueError, match="mode"):
                await snapshots.save(bad, boards("x", 1))
        with pytest.raises(TypeError):
            await snapshots.save("slayer", {"boards": object()})
        assert await snapshots.modes() == []


class TestInMemoryBoardSnapshots(BoardSnapshotsContract):
    @pytest.fixture
    async def snapshots(self) -> AsyncIterator[BoardSnapshots]:
        yield InMemoryBoardSnapshots()


@pytest.mark.azurite
class TestBlobBoardSnapshots(BoardSnapshotsContract):
    @pytest.fixture
    async def snapshots(self, azurite: Azurite, unique: str) -> AsyncIterator[BoardSnapshots]:
        storage = await open_table_storage(azurite.connection_string, f"t{unique}")
        yield storage.boards
        await storage.close()


class ScannedStore(PlayerStore, RecordScan, Protocol):
    """A player store that also scans its records, as both adapters do."""


class RecordScanContract:
    """Behaviour every player store's ``records`` scan must have."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[ScannedStore]:
        raise NotImplementedError
        yield

    async def test_the_scan_reads_every_record_once(self, store: ScannedStore) -> None:
        written: dict[str, ServiceRecord] = {}
        for i in range(7):  # more than one page of the table adapter's (set to 3 below)
            pid = f"p-{i}"
            outcome = await store.apply(PlayerSnapshot(ServiceRecord(pid)), [rated(pid, i + 1)])
            written[pid] = outcome.snapshot.record
        scanned = [r async for r in store.records()]
        assert sorted(r.player_id for r in scanned) == sorted(written)
        assert {r.player_id: r for r in scanned} == written
        assert all(r.ratings["slayer"].matches == 1 for r in scanned)

    async def test_an_empty_store_scans_nothing(self, store: ScannedStore) -> None:
        assert [r async for r in store.records()] == []


class TestInMemoryRecordScan(RecordScanContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[ScannedStore]:
        yield InMemoryPlayerStore()


@pytest.mark.azurite
class TestTableRecordScan(RecordScanContract):
    @pytest.fixture
    async def store(
        self, azurite: Azurite, unique: str, monkeypatch: pytest.MonkeyPatch
    ) -> AsyncIterator[ScannedStore]:
        monkeypatch.setattr(table_players, "SCAN_PAGE", 3)
        storage = await open_table_storage(azurite.connection_string, f"t{unique}")
        yield storage.players
        await storage.close()

    async def test_a_corrupt_record_row_is_left_out_not_the_scan_stopped(
        self, azurite: Azurite, unique: str, store: ScannedStore
    ) -> None:
        written = await store.apply(PlayerSnapshot(ServiceRecord("fine")), [rated("fine", 1)])
        # A row damaged by hand, as the chaos tests damage one to make a player fail.
        service = TableServiceClient.from_connection_string(azurite.connection_string)
        table = service.get_table_client(f"t{unique}players")
        table.upsert_entity({"PartitionKey": "broken", "RowKey": "record", "data": "{corrupt"})
        scanned = [r async for r in store.records()]
        assert scanned == [written.snapshot.record]
