"""Rendezvous placement: deterministic, balanced, minimal movement on resize."""

from __future__ import annotations

import pytest

from app.domain.placement import group_by_owner, moved, owner

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
