"""Rendezvous placement: deterministic, balanced, minimal movement on resize."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.application.ports import StoredPlacement
from app.domain.placement import (
    MAX_SIZE,
    POOLS,
    Placement,
    group_by_owner,
    moved,
    owner,
    size_problem,
)

KEYS = [f"player-{i}" for i in range(6000)]


def test_owner_is_deterministic_and_in_range() -> None:
    for size in (1, 2, 5, 16):
        owners = [owner(k, size) for k in KEYS[:200]]
        assert owners == [owner(k, size) for k in KEYS[:200]]
        assert all(0 <= o < size for o in owners)


def test_keys_spread_evenly() -> None:
    counts = {i: len(g) for i, g in group_by_owner(KEYS, 6).items()}
    assert set(counts) == set(range(6))
    assert max(counts.values()) < 1.25 * len(KEYS) / 6


@pytest.mark.parametrize(("old", "new"), [(2, 3), (3, 6), (6, 3), (4, 5)])
def test_resize_moves_only_what_it_must(old: int, new: int) -> None:
    changed = moved(KEYS, old, new)
    ideal = abs(1 - min(old, new) / max(old, new))
    assert len(changed) / len(KEYS) < ideal + 0.05
    if new > old:  # growing: keys move only onto the new members
        assert all(owner(k, new) >= old for k in changed)


def test_empty_pool_is_an_error() -> None:
    with pytest.raises(ValueError):
        owner("x", 0)


def test_the_board_pool_is_a_third_pool_sized_and_resized_like_the_others() -> None:
    placement = Placement(3, game=2, player=4, board=1)
    grown = placement.resized("board", 3)
    assert (grown.version, grown.size("board"), grown.game, grown.player) == (4, 3, 2, 4)
    assert grown.owner("board", "slayer") == owner("slayer", 3)
    assert "board" in POOLS and MAX_SIZE["board"] == 64
    assert size_problem("board", 64) is None
    assert size_problem("board", 65) == "size of the board pool must be between 1 and 64"
    assert size_problem("board", 8, limit=4) == "size of the board pool must be between 1 and 4"
    with pytest.raises(ValueError):
        placement.resized("board", 0)


def test_a_placement_stored_without_a_board_size_reads_as_the_configured_one() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    legacy = StoredPlacement(Placement(7, 2, 4), 2, 4, at)  # stored before the board pool
    upgraded = legacy.with_board(3)
    assert upgraded.placement == Placement(7, 2, 4, board=3)  # same version: no resize
    assert upgraded.configured("board") == 3 and upgraded.configured("player") == 4
    # One stored with a board size keeps it, whatever is configured now.
    current = StoredPlacement(Placement(8, 2, 4, board=5), 2, 4, at, configured_board=2)
    assert current.with_board(3) is current
