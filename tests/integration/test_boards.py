"""Leaderboards over Azurite: a host's snapshots survive it, a new host starts from them,
and a rebuild from the players table brings the boards back to the records (a voided
match's player leaves them)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.application.boards import BoardHost
from app.application.ports import PlayerSnapshot
from app.domain.leaderboards import STATS, BoardUpdate, ModeBoards, record_updates
from app.domain.stats import ServiceRecord
from devstack.processes import Azurite
from storage.tables import TableStorage, open_table_storage
from tests.support.boards import rated

pytestmark = pytest.mark.azurite


@pytest.fixture
async def storage(azurite: Azurite, unique: str) -> AsyncIterator[TableStorage]:
    opened = await open_table_storage(azurite.connection_string, f"t{unique}")
    yield opened
    await opened.close()


async def recomputed(storage: TableStorage) -> ModeBoards:
    """The slayer boards straight from the records."""
    boards = ModeBoards("slayer")
    async for record in storage.players.records():
        for update in record_updates(record):
            boards.apply(update)
    return boards


def same(host: BoardHost, boards: ModeBoards) -> bool:
    held = host.modes.get("slayer", ModeBoards("slayer"))
    return all(held.boards[s].ranked() == boards.boards[s].ranked() for s in STATS)


async def test_snapshots_and_a_rebuild_bring_the_boards_back(storage: TableStorage) -> None:
    applied = {}
    for n in range(1, 8):
        pid = f"p-{n}"
        outcome = await storage.players.apply(PlayerSnapshot(ServiceRecord(pid)), [rated(pid, n)])
        applied[pid] = outcome.snapshot
    first = BoardHost(storage.boards, storage.players)
    await first.start()
    await first.start_rebuild()
    assert same(first, await recomputed(storage)) and first.modes["slayer"].boards["kd"].size == 7
    await first.offer([BoardUpdate("slayer", "offered-only", {"kills": 1000.0})])
    await first.close()  # saves what changed

    second = BoardHost(storage.boards, storage.players)
    await second.start(rebuild=False)  # from the snapshot alone
    top = (await second.page("slayer", "kills", 1)).entries[0]
    assert (top.player_id, top.value) == ("offered-only", 1000.0)
    assert same(second, first.modes["slayer"])

    # p-7's only match is voided: the rebuild takes p-7 (and the player no record has) off.
    await storage.players.revert(applied["p-7"], rated("p-7", 7))
    assert await second.rebuild() == 7
    assert same(second, await recomputed(storage))
    assert await second.standing("slayer", "p-7") == {}
    assert await second.standing("slayer", "offered-only") == {}
    assert (await second.standing("slayer", "p-6"))["kills"].rank == 1
    assert await second.flush() == 1
    assert await storage.boards.load("slayer") == second.modes["slayer"].to_snapshot()
