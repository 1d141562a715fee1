"""The ``PlacementStore`` contract: where the pool directory keeps the pools' sizes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from azure.data.tables import UpdateMode

from app.application.ports import PlacementStore, StoredPlacement
from app.domain.errors import Conflict
from app.domain.placement import Placement
from devstack.processes import Azurite
from storage.memory import InMemoryPlacementStore
from storage.tables import open_table_storage
from tests.support.azure import STORAGE_ENV, azure_table_storage, connection_string

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def stored(
    version: int, game: int = 2, player: int = 2, configured: int = 2, board: int = 1
) -> StoredPlacement:
    return StoredPlacement(
        Placement(version, game, player, board), configured, configured, AT, configured_board=1
    )


class PlacementStoreContract:
    """Behaviour every ``PlacementStore`` adapter must have."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[PlacementStore]:
        raise NotImplementedError
        yield

    async def test_nothing_stored_at_first(self, store: PlacementStore) -> None:
        assert await store.load() is None

    async def test_saves_round_trip_and_replace(self, store: PlacementStore) -> None:
        await store.save(stored(1))
        assert await store.load() == stored(1)
        await store.save(stored(2, player=6))
        assert await store.load() == stored(2, player=6)
        await store.save(stored(3, player=6, board=4))
        assert await store.load() == stored(3, player=6, board=4)

    async def test_an_older_version_never_replaces_a_newer_one(self, store: PlacementStore) -> None:
        await store.save(stored(5, player=6))
        with pytest.raises(Conflict):
            await store.save(stored(4, player=3))
        assert (await store.load()) == stored(5, player=6)


class TestInMemoryPlacementStore(PlacementStoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[PlacementStore]:
        yield InMemoryPlacementStore()


@pytest.mark.azurite
class TestTablePlacementStore(PlacementStoreContract):
    @pytest.fixture
    async def store(self, azurite: Azurite, unique: str) -> AsyncIterator[PlacementStore]:
        storage = await open_table_storage(azurite.connection_string, f"t{unique}")
        yield storage.placements
        await storage.close()

    async def test_a_row_saved_before_the_board_pool_reads_without_a_board_size(
        self, azurite: Azurite, unique: str
    ) -> None:
        storage = await open_table_storage(azurite.connection_string, f"t{unique}")
        try:
            await storage.placements.save(stored(3, player=6, board=4))
            table = storage.tables.get_table_client(f"t{unique}matches")
            row = await table.get_entity("~pools", "placement")
            legacy = {k: v for k, v in row.items() if k not in ("board", "configured_board")}
            await table.upsert_entity(legacy, mode=UpdateMode.REPLACE)
            await table.close()
            loaded = await storage.placements.load()
            assert loaded is not None and loaded.configured_board is None
            assert loaded.with_board(5).placement == Placement(3, 2, 6, board=5)
        finally:
            await storage.close()

    async def test_the_row_does_not_show_up_as_a_saga(self, azurite: Azurite, unique: str) -> None:
        storage = await open_table_storage(azurite.connection_string, f"t{unique}")
        try:
            await storage.placements.save(stored(1))
            from app.domain.saga import SagaState

            for state in SagaState:
                assert await storage.sagas.sagas_in_state(state, 10) == []
        finally:
            await storage.close()


@pytest.mark.azure
class TestTablePlacementStoreOnAzure(PlacementStoreContract):
    """The same contract on real Azure Storage (see ``tests.support.azure``)."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[PlacementStore]:
        async with azure_table_storage(connection_string(STORAGE_ENV)) as storage:
            yield storage.placements
