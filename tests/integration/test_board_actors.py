"""The board pool (created by the pool directory) on a real Ray head and real Azurite:
each mode's boards on the actor that owns it, offers grouped by owner, a bad token
refused through Ray, and a killed actor that comes back with its boards (snapshots, then
a rebuild from the records)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import ray

from actors.config import ActorConfig, member_name
from actors.leaderboards import RayLeaderboards
from actors.pools import ensure_pools, kill_pools
from actors.routing import PlacementCache
from app.application.ports import PlayerSnapshot
from app.domain.leaderboards import BoardUpdate, InvalidContinuation
from app.domain.placement import owner
from app.domain.stats import ServiceRecord
from devstack.processes import Azurite
from devstack.ray_cluster import RayHead
from storage.tables import TableStorage, open_table_storage
from tests.support.boards import eventually, rated
from tests.support.raypools import joined

pytestmark = [pytest.mark.ray, pytest.mark.azurite, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def cluster(ray_head: RayHead) -> Iterator[RayHead]:
    with joined(ray_head, "board-tests", log_to_driver=False) as head:
        yield head


@pytest.fixture
def config(cluster: RayHead, azurite: Azurite) -> Iterator[ActorConfig]:
    run = uuid.uuid4().hex[:8]
    cfg = ActorConfig(
        storage_connection_string=azurite.connection_string,
        storage_prefix=f"board{run}",
        namespace=f"boards-{run}",
        game_pool_size=1,
        player_pool_size=1,
        board_actors=2,
        board_snapshot_interval_s=0.5,
    )
    yield cfg
    kill_pools(cfg.namespace)


@pytest.fixture
async def storage(config: ActorConfig) -> AsyncIterator[TableStorage]:
    opened = await open_table_storage(config.storage_connection_string, config.storage_prefix)
    yield opened
    await opened.close()


def mode_of(member: int, size: int) -> str:
    return next(m for i in range(100) if owner(m := f"mode{i}", size) == member)


async def test_each_mode_lives_on_its_owner_and_comes_back_after_a_kill(
    config: ActorConfig, storage: TableStorage
) -> None:
    for n in (3, 8):  # records of "slayer" before the actors start: a rebuild finds them
        pid = f"p-{n}"
        await storage.players.apply(PlayerSnapshot(ServiceRecord(pid)), [rated(pid, n)])
    assert (await asyncio.to_thread(ensure_pools, config)).board == 2
    boards = RayLeaderboards(PlacementCache(config.namespace))
    first, second = mode_of(0, 2), mode_of(1, 2)
    await boards.offer(
        [
            BoardUpdate(first, "a", {"kills": 5.0, "wins": 1.0, "kd": 1.0}),
            BoardUpdate(second, "b", {"kills": 7.0, "wins": 2.0, "kd": 2.0}),
            BoardUpdate(first, "c", {"kills": 9.0, "wins": 0.0, "kd": 3.0}),
        ]
    )

    async def offered() -> None:
        page = await boards.page(first, "kills", 1)
        assert [(e.player_id, e.value) for e in page.entries] == [("c", 9.0)]
        assert page.size == 2 and page.continuation is not None
        assert (await boards.standing(second, "b"))["wins"].rank == 1

    await eventually(offered)
    stats = await boards.describe()
    assert {s["index"]: set(s["modes"]) >= {(first, second)[s["index"]]} for s in stats} == {
        0: True,
        1: True,
    }
    token = (await boards.page(first, "kills", 1)).continuation
    with pytest.raises(InvalidContinuation):
        await boards.page(first, "wins", 1, token)

    member = owner("slayer", 2)
    actor = ray.get_actor(member_name("board", member), namespace=config.namespace)

    async def rebuilt() -> None:
        page = await boards.page("slayer", "rating", 10)
        assert [e.player_id for e in page.entries] == ["p-8", "p-3"]
        assert (await boards.standing("slayer", "p-3"))["kills"].value == 3.0

    await eventually(rebuilt)
    before = (await boards.describe())[member]["pid"]
    ray.kill(actor, no_restart=False)  # Ray restarts it: its boards come back from storage

    async def restarted() -> None:
        stats = (await boards.describe())[member]
        assert stats["pid"] != before and stats["rebuilds"] == 1 and not stats["rebuilding"]

    await eventually(restarted)
    await rebuilt()
