"""The pools on a real Ray head and real Azurite, driven from this process: the directory
creates, resizes and remembers them; grains move with their players; callers follow a
resize they missed and retry a shard that is restarting; a shard never holds more grains
than its capacity, even with ten times as many players going through it (20,000 with
``make capacity``)."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import ray
from azure.data.tables.aio import TableClient

from actors.config import DIRECTORY_NAME, ActorConfig, member_name
from actors.grains import GrainSettings
from actors.player_grains import RayPlayerGrains
from actors.pools import GamePool, RayPoolAdmin, ensure_pools, kill_pools
from actors.routing import PlacementCache
from actors.shard import PlayerShard
from app.application.commands import StartSaga
from app.application.ports import CarriedStart, PlayerUpdate
from app.domain.aggregation import aggregate
from app.domain.errors import NotFound
from app.domain.placement import owner
from app.domain.ratings import is_rated
from app.domain.saga import Action
from app.domain.validation import parse_match
from devstack.processes import Azurite
from devstack.ray_cluster import RayHead
from storage.entities import RECORD_KEY, record_from_entity
from storage.tables import open_table_storage
from tests.support.matches import expected_totals, random_match
from tests.support.raypools import joined
from tests.unit.test_rated_sagas import rated_match

pytestmark = [pytest.mark.ray, pytest.mark.azurite, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def cluster(ray_head: RayHead) -> Iterator[RayHead]:
    """This process joined to the module's Ray head, as a worker process would be."""
    with joined(ray_head, "pool-tests", log_to_driver=False) as head:
        yield head


@pytest.fixture
def config(cluster: RayHead, azurite: Azurite) -> Iterator[ActorConfig]:
    """Pools of their own (namespace, tables), stopped after the test."""
    run = uuid.uuid4().hex[:8]
    cfg = ActorConfig(
        storage_connection_string=azurite.connection_string,
        storage_prefix=f"pool{run}",
        namespace=f"pools-{run}",
        game_pool_size=1,
        player_pool_size=2,
    )
    yield cfg
    kill_pools(cfg.namespace)


def exists(namespace: str, name: str) -> bool:
    try:
        ray.get_actor(name, namespace=namespace)
        return True
    except ValueError:
        return False


def updates_for(matches: list[dict[str, Any]]) -> list[list[PlayerUpdate]]:
    """One batch per match, as a GameActor fans it out."""
    return [
        [
            PlayerUpdate(Action.APPLY, d)
            for d in aggregate(parse_match(m, datetime.now(UTC))).values()
        ]
        for m in matches
    ]


def matches_over(
    players: list[str], n: int, seed: int, size: int | None = None
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    return [random_match(rng, f"m{run}-{i}", players, size=size) for i in range(n)]


async def test_the_directory_creates_resizes_and_remembers_the_pools(config: ActorConfig) -> None:
    placement = await asyncio.to_thread(ensure_pools, config)
    assert (placement.game, placement.player) == (1, 2)
    admin = RayPoolAdmin(config.namespace)
    described = await admin.describe()
    members = described["pools"]["player"]["members"]
    assert [m["index"] for m in members] == [0, 1] and all(m["node_id"] for m in members)
    # Ray's worker processes run the actors on uvloop, installed with statsaga.
    every = members + described["pools"]["game"]["members"]
    assert {m["event_loop"] for m in every} == {"uvloop"}

    described = await admin.resize("player", 4)
    assert described["pools"]["player"]["size"] == 4
    assert described["version"] == placement.version + 1
    assert described["last_resize"]["from"] == 2 and described["last_resize"]["to"] == 4

    # A directory that dies comes back with the resize (it is stored, not in memory).
    directory = ray.get_actor(DIRECTORY_NAME, namespace=config.namespace)
    ray.kill(directory, no_restart=False)
    assert (await PlacementCache(config.namespace).refresh()).player == 4
    assert (await admin.describe())["pools"]["player"]["size"] == 4

    # A worker that starts again with the same settings keeps the operator's resize ...
    assert (await asyncio.to_thread(ensure_pools, config)).player == 4
    # ... and one whose setting changed applies it: the setting is the newer decision.
    changed = replace(config, player_pool_size=3)
    assert (await asyncio.to_thread(ensure_pools, changed)).player == 3
    assert exists(config.namespace, member_name("player", 2))
    assert not exists(config.namespace, member_name("player", 3))

    # A member beyond the size (left by a resize cut off half-way) is stopped by the next
    # worker start, so nothing runs that no placement routes to.
    stray = PlayerShard.options(  # type: ignore[attr-defined]
        name=member_name("player", 5), namespace=config.namespace, lifetime="detached"
    ).remote(5, changed, placement)
    await stray.ping.remote()
    await asyncio.to_thread(ensure_pools, changed)
    assert not exists(config.namespace, member_name("player", 5))


async def test_the_worker_stays_ready_through_a_game_pool_shrink(config: ActorConfig) -> None:
    await asyncio.to_thread(ensure_pools, replace(config, game_pool_size=3))
    pool = GamePool(PlacementCache(config.namespace))
    assert await pool.ping()  # caches the placement of 3 GameActors
    await RayPoolAdmin(config.namespace).resize("game", 1)
    # Members 1 and 2 are gone; the stale placement is looked up again, not reported.
    assert not exists(config.namespace, member_name("game", 2))
    assert await pool.ping()


async def test_a_game_actor_starts_a_saga_from_what_its_message_carried(
    config: ActorConfig, azurite: Azurite
) -> None:
    # The summary is stored and its payload blob is not: only the payload the start
    # carried, through a caller that missed a resize (``Moved``, then re-routed with the
    # same arguments), can start this saga on the owning GameActor.
    first = await asyncio.to_thread(ensure_pools, config)
    stale = GamePool(PlacementCache(config.namespace, first))
    await RayPoolAdmin(config.namespace).resize("game", 2)
    run = uuid.uuid4().hex[:6]
    match_id = next(f"g{run}-{i}" for i in range(100) if owner(f"g{run}-{i}", 2) == 1)
    players = [f"g{run}-p{i}" for i in range(6)]
    body = random_match(random.Random(12), match_id, players, size=6)
    match = parse_match(body, now=None)
    storage = await open_table_storage(azurite.connection_string, config.storage_prefix)
    try:
        record, _ = await storage.sagas.create(match, datetime.now(UTC), {})
        start = CarriedStart(record, match.canonical_json())
        reply = await stale.handle(StartSaga(match_id, start))
        assert reply.state == "completed"
        logged = await storage.sagas.deltas(match_id)
        # Rated through the shards (every player's rating read, none failed), and the
        # stats as aggregated.
        assert all(d.rating is not None for d in logged.values()) == is_rated(match)
        assert {p: replace(d, rating=None) for p, d in logged.items()} == aggregate(match)
        with pytest.raises(NotFound):  # what a start that reads would have needed
            await storage.archive.get(match_id, match.payload_hash())
    finally:
        await storage.close()
    assert stale._router.placements.current is not None
    assert stale._router.placements.current.game == 2  # told by Moved
    assert await wrong_records(azurite, config, [body]) == []


async def test_grains_move_with_their_players_and_stale_callers_follow(
    config: ActorConfig,
) -> None:
    first = await asyncio.to_thread(ensure_pools, config)
    players = [f"mv{uuid.uuid4().hex[:6]}-{i}" for i in range(120)]
    grains = RayPlayerGrains(PlacementCache(config.namespace))
    before = matches_over(players, 20, seed=3)
    for batch in updates_for(before):
        assert all(r.ok and r.changed for r in await grains.update(batch))

    # A caller that will miss the resize: it still routes by the first placement.
    stale = RayPlayerGrains(PlacementCache(config.namespace, first))
    admin = RayPoolAdmin(config.namespace)
    described = await admin.resize("player", 4)
    # Each activated player is now active on its owner only: the old shards let go of
    # the players that moved.
    touched = {line["player_id"] for m in before for line in m["players"]}
    for member in described["pools"]["player"]["members"]:
        owned = sum(1 for p in touched if owner(p, 4) == member["index"])
        assert member["active"] <= owned, member
        if member["index"] < 2:
            assert member["active"] == owned, member

    after = matches_over(players, 20, seed=4)
    for batch in updates_for(after):
        results = await stale.update(batch)
        assert all(r.ok and r.changed for r in results), results
    assert stale._router.placements.current is not None
    assert stale._router.placements.current.version == first.version + 1  # told by Moved

    totals = expected_totals(before + after)
    for player_id, expected in totals.items():
        record = await grains.service_record(player_id)
        assert record.counters["matches"] == expected["counters"]["matches"], player_id
        assert record.counters["kills"] == expected["counters"]["kills"], player_id


async def test_a_caller_retries_a_shard_that_is_restarting(
    config: ActorConfig, azurite: Azurite
) -> None:
    await asyncio.to_thread(ensure_pools, config)
    players = [f"rs{uuid.uuid4().hex[:6]}-{i}" for i in range(40)]
    grains = RayPlayerGrains(PlacementCache(config.namespace))
    matches = matches_over(players, 6, seed=5)
    batches = updates_for(matches)
    assert all(r.ok for r in await grains.update(batches[0]))
    for index in range(config.player_pool_size):
        ray.kill(ray.get_actor(member_name("player", index), config.namespace), no_restart=False)
    # Both shards are restarting: the calls wait for them rather than fail the players.
    for batch in batches[1:]:
        results = await grains.update(batch)
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    # A call that met the restart may have run before Ray answered "unavailable"; its
    # retry then finds the match applied (``changed`` False). Either way: counted once.
    assert await wrong_records(azurite, config, matches) == []


async def test_concurrent_sagas_reach_each_shard_in_shared_calls_and_end_exact(
    config: ActorConfig, azurite: Azurite
) -> None:
    # A GameActor's worth of sagas (the worker runs 32 at once) fanning out together.
    await asyncio.to_thread(ensure_pools, config)
    players = [f"co{uuid.uuid4().hex[:6]}-{i}" for i in range(96)]
    matches = matches_over(players, 32, seed=7, size=16)
    grains = RayPlayerGrains(PlacementCache(config.namespace))
    results = await asyncio.gather(*(grains.update(batch) for batch in updates_for(matches)))
    assert all(r.ok and r.changed for batch in results for r in batch)
    shards = [
        await ray.get_actor(member_name("player", i), config.namespace).stats.remote()
        for i in range(config.player_pool_size)
    ]
    sent = grains.stats()
    served = [s["calls_served"] for s in shards]
    print(f"\ncoalescing: {len(matches)} matches, {sent}, calls served per shard {served}")
    # Each batch (one saga's players on one shard) was one Ray call before; now the
    # shards served no more calls than were sent, a fraction of the batches.
    assert sum(served) == sent["shard_calls"]
    assert sent["shard_batches"] >= len(matches) and sent["shard_calls"] <= len(matches) // 4
    assert await wrong_records(azurite, config, matches) == []


async def wrong_records(
    azurite: Azurite, config: ActorConfig, matches: list[dict[str, Any]]
) -> list[str]:
    """Players of ``matches`` whose stored record (read from the table, not through the
    grains) differs from the totals of ``matches``, or is missing."""
    table = TableClient.from_connection_string(
        azurite.connection_string, f"{config.storage_prefix}players"
    )
    async with table:
        rows = table.query_entities("RowKey eq @k", parameters={"k": RECORD_KEY})
        records = {row["PartitionKey"]: record_from_entity(row) async for row in rows}
    return [
        p
        for p, t in expected_totals(matches).items()
        if p not in records
        or any(records[p].counters.get(k) != v for k, v in t["counters"].items())
    ]


# Each new player costs its shard one read and one entity group transaction: the full run
# (20,000 players, capacity 2,000) takes minutes on a 2-core machine, so `make test` runs
# it at a twentieth of the players with the same 10:1 ratio, and `make capacity` in full.
CAPACITY_PLAYERS = int(os.environ.get("STATSAGA_TEST_CAPACITY_PLAYERS", "1000"))


async def test_many_players_through_a_shard_of_a_tenth_the_capacity_end_exact(
    config: ActorConfig, azurite: Azurite
) -> None:
    population = CAPACITY_PLAYERS
    capacity = population // 10
    cfg = replace(config, player_pool_size=1, grains=GrainSettings(capacity=capacity))
    await asyncio.to_thread(ensure_pools, cfg)
    run = uuid.uuid4().hex[:6]
    players = [f"cap{run}-{i}" for i in range(population)]
    rng = random.Random(11)
    # Every player once or twice (in order, 32 a match): 12% more matches than needed.
    matches = []
    for i in range(population * 112 // 100 // 32):
        lineup = [players[(32 * i + k) % population] for k in range(32)]
        matches.append(random_match(rng, f"c{run}-{i}", lineup, size=32))
    shard = ray.get_actor(member_name("player", 0), namespace=cfg.namespace)
    batches = updates_for(matches)
    peak = 0
    queue = iter(batches)

    async def feed() -> None:
        nonlocal peak
        for batch in queue:
            results = await shard.update.remote(batch)
            assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
            stats = await shard.stats.remote()
            peak = max(peak, stats["active"])

    await asyncio.gather(*(feed() for _ in range(6)))
    stats = await shard.stats.remote()
    print(f"\ncapacity: {population} players, capacity {capacity}, shard stats {stats}")
    assert stats["peak_active"] <= capacity and peak <= capacity, stats
    assert stats["activations"] >= population and stats["deactivations"] > 0, stats

    # Every record exact, read back from the table (not through the grains).
    assert set(expected_totals(matches)) == set(players)
    assert await wrong_records(azurite, cfg, matches) == []


async def test_reads_of_unknown_players_leave_the_warm_grains_active(config: ActorConfig) -> None:
    # A scan of ids that never played must not take the shard's slots: at capacity, each
    # would push out a warm grain (and its next call would reload from storage).
    capacity = 6
    cfg = replace(config, player_pool_size=1, grains=GrainSettings(capacity=capacity))
    await asyncio.to_thread(ensure_pools, cfg)
    run = uuid.uuid4().hex[:6]
    warm = [f"warm{run}-{i}" for i in range(capacity)]
    shard = ray.get_actor(member_name("player", 0), namespace=cfg.namespace)
    (batch,) = updates_for(matches_over(warm, 1, seed=5, size=capacity))
    assert all(r.ok for r in await shard.update.remote(batch))
    before = await shard.stats.remote()
    assert before["active"] == capacity

    for i in range(3 * capacity):
        record = await shard.service_record.remote(f"nobody{run}-{i}")
        assert record.counters.get("matches", 0) == 0 and record.first_played is None

    after = await shard.stats.remote()
    assert after["active"] == capacity
    assert after["deactivations"] == before["deactivations"] == 0
    assert after["activations"] == before["activations"]
    for player in warm:  # served from the activations still there: no reload
        assert (await shard.service_record.remote(player)).counters["matches"] == 1
    assert (await shard.stats.remote())["activations"] == before["activations"]


async def test_a_known_player_a_shard_guesses_is_new_is_rated_again_through_ray(
    config: ActorConfig, azurite: Azurite
) -> None:
    # Every cold player so far was new, so the shards guess; the first match's players,
    # made cold again, are guessed too: their shards refuse the guessed changes and the
    # GameActor rates them again from the ratings the shards answered, logs and applies.
    await asyncio.to_thread(ensure_pools, config)
    pool = GamePool(PlacementCache(config.namespace))
    run = uuid.uuid4().hex[:6]
    known, *others = [f"rr{run}-{i}" for i in range(4)]
    storage = await open_table_storage(azurite.connection_string, config.storage_prefix)

    async def play(players: list[str]) -> str:
        match = parse_match(rated_match(players), now=None)
        await storage.archive.put(match)
        record, _ = await storage.sagas.create(match, datetime.now(UTC), {})
        start = CarriedStart(record, match.canonical_json())
        assert (await pool.handle(StartSaga(match.match_id, start))).state == "completed"
        return match.match_id

    try:
        first = await play([known, others[0]])
        for i in range(config.player_pool_size):
            shard = ray.get_actor(member_name("player", i), config.namespace)
            await shard.deactivate.remote()
        second = await play([known, *others])
        grains = RayPlayerGrains(PlacementCache(config.namespace))
        for pid in (known, others[0]):  # both played the first match: both known
            change = (await storage.sagas.deltas(second))[pid].rating
            had = (await storage.sagas.deltas(first))[pid].rating
            assert change is not None and had is not None
            assert not change.guessed and change.before == had.after
            assert (await grains.service_record(pid)).ratings["slayer"] == change.after
        for pid in others[1:]:  # new, guessed so, and rightly
            guessed = (await storage.sagas.deltas(second))[pid].rating
            assert guessed is not None and guessed.guessed
        stats = [
            await ray.get_actor(member_name("player", i), config.namespace).stats.remote()
            for i in range(config.player_pool_size)
        ]
        assert sum(s["guessed_wrong"] for s in stats) == 2
    finally:
        await storage.close()
