"""``BoardHost`` across a resize of the board pool: a lost mode is saved, then dropped; a
gained one is served from its snapshot while it alone is rebuilt from the records."""

from __future__ import annotations

import asyncio

from app.application.boards import BoardHost
from app.domain.leaderboards import BoardUpdate
from storage.memory_boards import InMemoryBoardSnapshots
from tests.unit.test_board_host import Scan, record, values


async def test_a_lost_mode_is_saved_then_dropped() -> None:
    snapshots = InMemoryBoardSnapshots()
    owned = {"slayer", "ctf"}
    host = BoardHost(snapshots, owns=lambda mode: mode in owned)
    await host.offer([BoardUpdate("slayer", "a", values(1)), BoardUpdate("ctf", "b", values(2))])
    owned.discard("ctf")
    assert await host.drop() == ["ctf"]
    assert set(host.modes) == {"slayer"}
    saved = await snapshots.load("ctf")  # what the new owner loads
    assert saved is not None and saved["boards"]["kills"] == [["b", 2.0]]
    assert await host.drop() == []
    assert await host.flush() == 1  # slayer only: ctf is no longer this host's to save


async def test_a_gained_mode_is_served_from_its_snapshot_while_it_alone_is_rebuilt() -> None:
    snapshots = InMemoryBoardSnapshots()
    previous = BoardHost(snapshots)  # ctf's owner before the resize
    await previous.offer(
        [BoardUpdate("ctf", "voided", values(50)), BoardUpdate("ctf", "a", values(1))]
    )
    await previous.close()
    scan = Scan([record("a", 7, "ctf"), record("b", 3), record("c", 4, "ctf")], hold=True)
    owned = {"slayer"}
    host = BoardHost(snapshots, scan, owns=lambda mode: mode in owned)
    await host.offer([BoardUpdate("slayer", "s", values(9))])  # no record: a rebuild drops it
    owned.add("ctf")
    task = host.gain(lambda mode: mode == "ctf")
    await asyncio.wait_for(scan.read.wait(), 1)
    assert host.rebuilding
    served = await host.page("ctf", "kills", 5)
    assert [e.player_id for e in served.entries] == ["voided", "a"]  # the snapshot meanwhile
    await host.offer([BoardUpdate("ctf", "a", values(20))])  # newer than the scan's record
    scan.go_on.set()
    await asyncio.wait_for(task, 1)
    page = await host.page("ctf", "kills", 5)
    assert [(e.player_id, e.value) for e in page.entries] == [("a", 20.0), ("c", 4.0)]
    slayer = await host.page("slayer", "kills", 5)  # not in the gain: left as served
    assert [(e.player_id, e.value) for e in slayer.entries] == [("s", 9.0)]


async def test_a_gain_waits_for_the_rebuild_under_way_and_a_mode_lost_meanwhile_is_not_kept() -> (
    None
):
    owned = {"slayer", "ctf"}
    scan = Scan([record("a", 1), record("b", 2, "ctf"), record("c", 3, "swat")], hold=True)
    host = BoardHost(InMemoryBoardSnapshots(), scan, owns=lambda mode: mode in owned)
    host.start_rebuild()
    await asyncio.wait_for(scan.read.wait(), 1)
    owned.discard("ctf")  # a resize, while the full rebuild scans
    owned.add("swat")
    await host.drop()
    gain = host.gain(lambda mode: mode == "swat")
    scan.go_on.set()
    await asyncio.wait_for(gain, 2)
    assert host.rebuilds == 2 and not host.rebuilding
    assert set(host.modes) == {"slayer", "swat"}
    swat = await host.page("swat", "kills", 5)
    assert [e.player_id for e in swat.entries] == ["c"]
