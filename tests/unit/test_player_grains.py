"""``RayPlayerGrains`` over a fake shard call (no Ray): concurrent sagas' batches share
calls, and every per-call answer (``Moved``, an unreachable shard) reaches each caller,
who re-routes or fails only its own updates."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from ray.exceptions import RayError

from actors.player_grains import RayPlayerGrains
from actors.routing import PlacementCache
from app.application.ports import PlayerUpdate, UpdateResult
from app.domain.aggregation import aggregate
from app.domain.placement import Moved, Placement
from app.domain.saga import Action
from app.domain.validation import parse_match
from tests.support.matches import random_match

OLD = Placement(1, game=1, player=1)
NEW = Placement(2, game=1, player=2)


def sagas(n: int) -> list[list[PlayerUpdate]]:
    """``n`` matches of the same 8 players, 4 on each shard of ``NEW``."""
    candidates = [f"p{i}" for i in range(100)]
    players = [p for p in candidates if NEW.owner("player", p) == 0][:4]
    players += [p for p in candidates if NEW.owner("player", p) == 1][:4]
    rng = random.Random(4)
    return [
        [
            PlayerUpdate(Action.APPLY, d)
            for d in aggregate(
                parse_match(random_match(rng, f"m{k}", players, size=8), datetime.now(UTC))
            ).values()
        ]
        for k in range(n)
    ]


class FakeShards:
    """Shards that answer ``Moved`` to callers on ``OLD`` and run the rest, one loop turn
    per call; ``failing`` shards raise a Ray error instead."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        self.calls: list[tuple[int, int, int]] = []  # (shard, updates, placement version)
        self.failing = failing

    async def call(self, index: int, send: Callable[[Any], Awaitable[Any]]) -> Any:
        """The router's call: ``send`` gets a handle whose only method is ``update``."""
        handle = SimpleNamespace(
            update=SimpleNamespace(
                remote=lambda batch, placement: self.update(index, batch, placement)
            )
        )
        return await send(handle)

    async def update(self, index: int, batch: Sequence[PlayerUpdate], placement: Placement) -> Any:
        self.calls.append((index, len(batch), placement.version))
        await asyncio.sleep(0.001)
        if index in self.failing:
            raise RayError("the shard's process died")
        if placement.version < NEW.version:
            return Moved(NEW)
        assert all(placement.owner("player", u.delta.player_id) == index for u in batch)
        return [UpdateResult(u.delta.player_id, u.delta.match_id, True, True) for u in batch]


def grains_over(shards: FakeShards, placement: Placement, in_flight: int = 1) -> RayPlayerGrains:
    grains = RayPlayerGrains(PlacementCache("unit", placement), in_flight=in_flight)
    grains._router.call = shards.call  # type: ignore[method-assign]
    return grains


def keys(updates: Sequence[PlayerUpdate]) -> list[tuple[str, str]]:
    return [(u.delta.player_id, u.delta.match_id) for u in updates]


def assert_each_applied_its_own(
    batches: Sequence[Sequence[PlayerUpdate]], results: Sequence[Sequence[UpdateResult]]
) -> None:
    """Every caller got a result for each of its own updates, in order, and all applied."""
    for batch, answer in zip(batches, results, strict=True):
        assert [(r.player_id, r.match_id) for r in answer] == keys(batch)
        assert all(r.ok for r in answer), [r.error for r in answer]


async def test_concurrent_sagas_share_calls_and_each_gets_its_own_results() -> None:
    shards = FakeShards()
    grains = grains_over(shards, NEW)
    batches = sagas(8)
    assert_each_applied_its_own(batches, await asyncio.gather(*map(grains.update, batches)))
    # Without coalescing: one call per saga per shard (16). With it: the first saga's
    # call to each shard at once, and everything queued behind it in one more.
    assert len(shards.calls) == 4
    assert grains.stats() == {
        "shard_calls": 4,
        "shard_batches": 16,
        "shard_updates": sum(len(b) for b in batches),
    }


async def test_a_moved_answer_to_a_shared_call_re_routes_each_callers_own_updates() -> None:
    shards = FakeShards()
    grains = grains_over(shards, OLD)
    batches = sagas(5)
    assert_each_applied_its_own(batches, await asyncio.gather(*map(grains.update, batches)))
    # Two calls on the old placement (the first caller's, then the others' together)
    # answered Moved; then each caller's updates went by the new one.
    assert [v for _, _, v in shards.calls[:2]] == [1, 1]
    assert {v for _, _, v in shards.calls[2:]} == {2}
    assert sum(n for _, n, v in shards.calls if v == 2) == sum(len(b) for b in batches)
    assert grains._router.placements.current == NEW


async def test_a_shard_that_fails_a_shared_call_fails_each_callers_updates_on_it_only() -> None:
    shards = FakeShards(failing=frozenset({1}))
    grains = grains_over(shards, NEW)
    batches = sagas(6)
    results = await asyncio.gather(*(grains.update(b) for b in batches))
    for batch, answer in zip(batches, results, strict=True):
        assert [(r.player_id, r.match_id) for r in answer] == keys(batch)
        for r in answer:
            on_failing = NEW.owner("player", r.player_id) == 1
            assert r.ok is not on_failing
            if on_failing:  # transient: the saga retries it durably
                assert r.transient and r.error == "shard 1 unavailable: RayError"
