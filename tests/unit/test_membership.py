"""A pool member's view of its pool: adopting newer placements, answering ``Moved`` for
keys it no longer owns, draining its calls."""

from __future__ import annotations

import asyncio

from actors.membership import Membership
from app.domain.placement import Moved, Placement, owner

V1 = Placement(1, game=2, player=2)
V2 = V1.resized("player", 4)
KEYS = [f"p{i}" for i in range(200)]


def test_placements_only_move_forward() -> None:
    member = Membership("player", 0, V2)
    assert not member.adopt(V1) and member.placement == V2
    assert V2.version == 2 and V2.player == 4 and V2.game == 2


def test_a_caller_on_an_old_placement_is_told_the_new_one() -> None:
    member = Membership("player", 0, V2)
    mine_before = [k for k in KEYS if owner(k, 2) == 0]
    moved_away = [k for k in mine_before if owner(k, 4) != 0]
    kept = [k for k in mine_before if owner(k, 4) == 0]
    assert moved_away and kept
    assert member.check(moved_away[:1], V1) == Moved(V2)
    assert member.check(kept, V1) is None  # still its own: served
    assert member.moved == 1


def test_a_member_learns_a_newer_placement_from_its_caller() -> None:
    member = Membership("player", 1, V1)  # restarted with the placement it was created with
    key = next(k for k in KEYS if owner(k, 4) == 1)
    assert member.check([key], V2) is None and member.placement == V2


def test_a_caller_without_a_placement_is_served() -> None:
    member = Membership("player", 0, V2)
    assert member.check(KEYS, None) is None


async def test_drain_waits_for_the_calls_in_flight() -> None:
    member = Membership("game", 0, V1)
    release = asyncio.Event()

    async def call() -> None:
        with member.call():
            await release.wait()

    task = asyncio.create_task(call())
    await asyncio.sleep(0)
    assert not await member.drain(0.05)  # still running
    drained = asyncio.create_task(member.drain(5))
    release.set()
    assert await drained and member.in_flight == 0
    await task
    assert await member.drain(0.01)  # nothing in flight: at once
