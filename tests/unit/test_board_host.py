"""``BoardHost``: offers in memory, snapshots only of changed modes and only every
interval, a start from snapshots, and rebuilds in which offers win over the scan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from app.application.boards import BoardHost
from app.domain.errors import StorageUnavailable
from app.domain.leaderboards import BoardUpdate, InvalidContinuation
from app.domain.ratings import SkillRating
from app.domain.stats import OTHER, ServiceRecord
from storage.memory_boards import InMemoryBoardSnapshots


def values(kills: int, rating: float | None = None) -> dict[str, float]:
    out = {"kills": float(kills), "wins": 1.0, "kd": kills / 2}
    return out if rating is None else {**out, "rating": rating}


def record(pid: str, kills: int, mode: str = "slayer", rated: bool = True) -> ServiceRecord:
    counters = {"matches": 1, "wins": 1, "kills": kills, "deaths": 2}
    ratings = {mode: SkillRating(mu=25.0 + kills, sigma=8.0, matches=1)} if rated else {}
    return ServiceRecord(pid, modes={mode: counters}, ratings=ratings)


class Scan:
    """A record scan that can be held after each record, for offers to come meanwhile."""

    def __init__(self, records: list[ServiceRecord], hold: bool = False) -> None:
        self.list = records
        self.read = asyncio.Event()
        self.go_on = asyncio.Event()
        if not hold:
            self.go_on.set()

    async def records(self) -> AsyncIterator[ServiceRecord]:
        for r in self.list:
            yield r
            self.read.set()
            await self.go_on.wait()


class FailingSnapshots(InMemoryBoardSnapshots):
    fail = True

    async def save(self, mode: str, snapshot: Mapping[str, Any]) -> None:
        if self.fail:
            raise StorageUnavailable("down")
        await super().save(mode, snapshot)


async def test_offers_serve_pages_and_standings() -> None:
    host = BoardHost(InMemoryBoardSnapshots())
    await host.offer([BoardUpdate("slayer", f"p{i}", values(i, rating=i / 2)) for i in range(5)])
    await host.offer([BoardUpdate(OTHER, "p9", values(99))])  # no mode: never on a board
    page = await host.page("slayer", "kills", 2)
    assert [(e.rank, e.player_id, e.value) for e in page.entries] == [
        (1, "p4", 4.0),
        (2, "p3", 3.0),
    ]
    assert page.size == 5 and page.continuation is not None
    rest = await host.page("slayer", "kills", 10, page.continuation)
    assert [e.player_id for e in rest.entries] == ["p2", "p1", "p0"] and rest.continuation is None
    standing = await host.standing("slayer", "p3")
    assert (standing["rating"].rank, standing["rating"].percentile) == (2, 60.0)
    assert await host.standing("slayer", "nobody") == {}
    assert (await host.page("ctf", "wins", 5)).size == 0  # a mode nobody played: empty
    assert OTHER not in host.modes
    with pytest.raises(ValueError, match="unknown stat"):
        await host.page("slayer", "deaths", 5)
    with pytest.raises(InvalidContinuation):
        await host.page("slayer", "wins", 5, page.continuation)  # the kills board's token


async def test_a_flush_saves_changed_modes_only() -> None:
    snapshots = InMemoryBoardSnapshots()
    host = BoardHost(snapshots)
    for kills in range(1000):  # a thousand updates of one mode...
        await host.offer([BoardUpdate("slayer", "p", values(kills))])
    await host.offer([BoardUpdate("ctf", "q", values(1))])
    assert snapshots.saves == 0  # ...touch no storage
    assert await host.flush() == 2 and snapshots.saves == 2  # ...and are one save
    assert await host.flush() == 0
    await host.offer([BoardUpdate("ctf", "q", values(1))])  # the same values: no change
    assert await host.flush() == 0
    await host.offer([BoardUpdate("ctf", "q", None)])
    assert await host.flush() == 1
    assert await snapshots.load("ctf") == {
        "version": 1,
        "mode": "ctf",
        "boards": {"rating": [], "kills": [], "wins": [], "kd": []},
    }


async def test_a_failed_save_stays_due() -> None:
    snapshots = FailingSnapshots()
    host = BoardHost(snapshots)
    await host.offer([BoardUpdate("slayer", "p", values(3))])
    with pytest.raises(StorageUnavailable):
        await host.flush()
    snapshots.fail = False
    assert await host.flush() == 1


async def test_run_saves_every_interval_and_close_saves_the_rest() -> None:
    snapshots = InMemoryBoardSnapshots()
    host = BoardHost(snapshots, snapshot_interval_s=0.05)
    running = asyncio.create_task(host.run())
    await host.offer([BoardUpdate("slayer", "p", values(1))])
    await asyncio.sleep(0.12)
    assert snapshots.saves == 1
    await host.offer([BoardUpdate("slayer", "p", values(2))])
    await host.close()
    await asyncio.wait_for(running, 1)
    assert snapshots.saves == 2
    assert (await snapshots.load("slayer"))["boards"]["kills"] == [["p", 2.0]]  # type: ignore[index]


async def test_a_start_loads_the_owned_snapshots_then_rebuilds_from_the_records() -> None:
    snapshots = InMemoryBoardSnapshots()
    before = BoardHost(snapshots)
    await before.offer(
        [
            BoardUpdate("slayer", "gone", values(50)),  # voided since: no record plays it
            BoardUpdate("slayer", "a", values(1)),
            BoardUpdate("ctf", "c", values(1)),
        ]
    )
    await before.close()
    scan = Scan([record("a", 7), record("b", 3), record("c", 4, "ctf")])
    host = BoardHost(snapshots, scan, owns=lambda mode: mode == "slayer")
    await host.start(rebuild=False)
    assert set(host.modes) == {"slayer"}  # ctf is another host's
    assert [e.player_id for e in (await host.page("slayer", "kills", 5)).entries] == ["gone", "a"]
    assert await host.rebuild() == 3
    page = await host.page("slayer", "kills", 5)
    assert [(e.player_id, e.value) for e in page.entries] == [("a", 7.0), ("b", 3.0)]
    assert set(host.modes) == {"slayer"}
    assert await host.flush() == 1  # the rebuilt mode is saved


async def test_offers_during_a_rebuild_win_over_the_scan() -> None:
    scan = Scan([record("a", 1), record("b", 2), record("c", 3)], hold=True)
    host = BoardHost(InMemoryBoardSnapshots(), scan)
    await host.start()
    await asyncio.wait_for(scan.read.wait(), 1)  # the scan has read a's old record
    assert host.rebuilding
    await host.offer([BoardUpdate("slayer", "a", values(40)), BoardUpdate("slayer", "b", None)])
    served = await host.page("slayer", "kills", 5)  # offers are served while it runs
    assert [(e.player_id, e.value) for e in served.entries] == [("a", 40.0)]
    scan.go_on.set()
    await asyncio.wait_for(host.start_rebuild(), 1)
    assert not host.rebuilding and host.rebuilds == 1
    page = await host.page("slayer", "kills", 5)
    assert [(e.player_id, e.value) for e in page.entries] == [("a", 40.0), ("c", 3.0)]
    rating = await host.standing("slayer", "c")
    assert rating["rating"].value == SkillRating(mu=28.0, sigma=8.0).skill


async def test_one_rebuild_at_a_time_and_none_without_a_scan() -> None:
    with pytest.raises(RuntimeError, match="no record scan"):
        await BoardHost(InMemoryBoardSnapshots()).rebuild()
    scan = Scan([record("a", 1)], hold=True)
    host = BoardHost(InMemoryBoardSnapshots(), scan)
    task = host.start_rebuild()
    await asyncio.wait_for(scan.read.wait(), 1)
    assert host.start_rebuild() is task
    with pytest.raises(RuntimeError, match="already running"):
        await host.rebuild()
    await host.close()  # cancels it
    assert task.done() and not host.rebuilding


async def test_an_offer_before_the_rebuild_task_first_runs_is_kept() -> None:
    # An actor's first call starts the rebuild and then applies its offer at once, before
    # the rebuild's task has run a line: that offer must survive the swap.
    host = BoardHost(InMemoryBoardSnapshots(), Scan([record("a", 1)]))
    await host.start()
    await host.offer([BoardUpdate("ctf", "b", values(5))])
    await asyncio.wait_for(host.start_rebuild(), 1)
    assert [e.player_id for e in (await host.page("ctf", "kills", 5)).entries] == ["b"]
    assert [e.player_id for e in (await host.page("slayer", "kills", 5)).entries] == ["a"]
