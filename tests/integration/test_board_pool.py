"""The board pool resized through the pool directory on a real Ray head and real
Azurite, while the player grains offer new values: every mode's boards end on its owner
only, equal to the boards recomputed from the records. Operators see and resize it
through the admin API and the CLI like the other pools."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from actors.config import ActorConfig
from actors.grains import GrainSettings, PlayerGrainHost
from actors.leaderboards import RayLeaderboards
from actors.player_grains import RayPlayerGrains
from actors.pools import RayPoolAdmin, ensure_pools, kill_pools
from actors.routing import PlacementCache
from app.application.operations import Operations
from app.application.services import StatsService
from app.domain.leaderboards import STATS, ModeBoards, record_updates
from app.domain.placement import owner
from app.entrypoints.api import create_app
from app.runtime.lifeline import die_with_parent
from app.settings import Settings
from devstack.processes import Azurite
from devstack.ray_cluster import RayHead
from storage.memory import InMemoryPayloadArchive, InMemoryPlayerStore, InMemorySagaLog
from storage.memory_bus import InMemoryMessageBus
from tests.integration.test_pools import updates_for
from tests.support.boards import eventually
from tests.support.matches import random_match
from tests.support.raypools import joined

pytestmark = [pytest.mark.ray, pytest.mark.azurite, pytest.mark.timeout(600)]
# Chosen to spread over three members, and over two (checked below, not assumed).
MODES = ("slayer", "oddball", "swat", "ctf", "infection")
ADMIN = "admin-key-0123456789"


@pytest.fixture(scope="module")
def cluster(ray_head: RayHead) -> Iterator[RayHead]:
    with joined(ray_head, "board-pool-tests", log_to_driver=False) as head:
        yield head


@pytest.fixture
def config(cluster: RayHead, azurite: Azurite) -> Iterator[ActorConfig]:
    run = uuid.uuid4().hex[:8]
    cfg = ActorConfig(
        storage_connection_string=azurite.connection_string,
        storage_prefix=f"bpool{run}",
        namespace=f"bpool-{run}",
        game_pool_size=1,
        player_pool_size=2,
        board_actors=1,
        board_snapshot_interval_s=0.5,
    )
    yield cfg
    kill_pools(cfg.namespace)


async def test_the_board_pool_resizes_while_offers_flow_and_ends_as_recomputed(
    config: ActorConfig,
) -> None:
    assert {owner(m, 3) for m in MODES} == {0, 1, 2} and {owner(m, 2) for m in MODES} == {0, 1}
    assert (await asyncio.to_thread(ensure_pools, config)).board == 1
    players = [f"bp{uuid.uuid4().hex[:6]}-{i}" for i in range(40)]
    grains = RayPlayerGrains(PlacementCache(config.namespace))
    boards = RayLeaderboards(PlacementCache(config.namespace))
    admin = RayPoolAdmin(config.namespace)
    stop = asyncio.Event()

    async def play() -> int:
        """Matches one after another (their players' grains offer the new values)."""
        rng, played = random.Random(23), 0
        while not stop.is_set():
            match = random_match(rng, f"bp-{played}", players, size=rng.randint(2, 8))
            match["mode"] = MODES[played % len(MODES)]
            for batch in updates_for([match]):
                results = await grains.update(batch)
                assert all(r.ok for r in results), results
            played += 1
        return played

    playing = asyncio.create_task(play())
    await asyncio.sleep(2)
    grown = await admin.resize("board", 3)
    assert grown["pools"]["board"]["size"] == 3 and grown["configured"]["board"] == 1
    await asyncio.sleep(2)
    shrunk = await admin.resize("board", 2)
    assert shrunk["last_resize"] | {"seconds": 0, "at": ""} == {
        "pool": "board",
        "from": 3,
        "to": 2,
        "version": grown["version"] + 1,
        "drained": True,
        "seconds": 0,
        "at": "",
    }
    await asyncio.sleep(2)
    stop.set()
    assert await playing > 3 * len(MODES)

    expected = {mode: ModeBoards(mode) for mode in MODES}
    for player_id in players:
        for update in record_updates(await grains.service_record(player_id)):
            expected[update.mode].apply(update)

    async def recomputed() -> None:
        for mode in MODES:
            for stat in STATS:
                served = await boards.page(mode, stat, 100)
                want, _ = expected[mode].boards[stat].page(100)
                got = [(e.player_id, e.value) for e in served.entries]
                assert got == [(e.player_id, e.value) for e in want], (mode, stat)

    await eventually(recomputed)
    members = (await admin.describe())["pools"]["board"]["members"]
    assert [m["index"] for m in members] == [0, 1]
    for member in members:  # each mode on its owner only
        assert set(member["modes"]) == {m for m in MODES if owner(m, 2) == member["index"]}
        assert member["placement_version"] == shrunk["version"]


async def test_operators_see_and_resize_the_board_pool_through_the_api_and_the_cli(
    config: ActorConfig, cluster: RayHead
) -> None:
    await asyncio.to_thread(ensure_pools, config)
    store, sagas = InMemoryPlayerStore(), InMemorySagaLog()
    archive, bus = InMemoryPayloadArchive(), InMemoryMessageBus()
    service = StatsService(sagas, archive, store, PlayerGrainHost(store, GrainSettings()), bus)
    settings = Settings(api_keys=f"{ADMIN}:admin")
    app = create_app(
        settings, service, Operations(sagas, bus), pool_admin=RayPoolAdmin(config.namespace)
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    auth = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://statsaga") as client:
        described = (await client.get("/v1/admin/pools", headers=auth)).json()
        assert described["configured"] == {"game": 1, "player": 2, "board": 1}
        assert [m["index"] for m in described["pools"]["board"]["members"]] == [0]
        member = described["pools"]["board"]["members"][0]
        assert {"modes", "rebuilding", "snapshots_saved", "placement_version"} <= set(member)
        put = await client.put("/v1/admin/pools/board", headers=auth, json={"size": 2})
        assert put.status_code == 200, put.text
        assert put.json()["pools"]["board"]["size"] == 2
        too_big = await client.put("/v1/admin/pools/board", headers=auth, json={"size": 65})
        assert too_big.status_code == 422 and "board pool" in too_big.text

    env = {
        **os.environ,
        **cluster.env,
        "STATSAGA_RAY_ADDRESS": cluster.address,
        "STATSAGA_RAY_NAMESPACE": config.namespace,
    }
    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.entrypoints.cli", "pools", "resize", "board", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=die_with_parent(),
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "board pool: 3 members" in shown.stdout
    assert "MODES" in shown.stdout and "SNAPSHOTS_SAVED" in shown.stdout
    assert (await PlacementCache(config.namespace).refresh()).board == 3
