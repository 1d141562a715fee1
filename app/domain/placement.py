"""Placement of keys on pool members by rendezvous (highest random weight) hashing, and the
versioned pool sizes every process routes by.

Pure and deterministic across processes (no ``hash()`` salt): every API and worker process
computes the same owner for a player id. Growing a pool from n to n+1 moves only ~1/(n+1)
of the keys, all of them to the new member.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

PoolName = Literal["game", "player", "board"]
POOLS: tuple[PoolName, ...] = ("game", "player", "board")
# Resizing bounds, the same as the settings' (a pool member is a process: ~50 MiB each).
# A board member holds whole modes: more members than modes would sit idle.
MAX_SIZE: dict[PoolName, int] = {"game": 256, "player": 1024, "board": 64}


def _weight(key: str, member: int) -> int:
    digest = hashlib.blake2b(f"{member}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(key: str, size: int) -> int:
    """The index in ``range(size)`` that owns ``key``."""
    if size < 1:
        raise ValueError("a pool needs at least one member")
    return max(range(size), key=lambda member: _weight(key, member))


def group_by_owner(keys: Iterable[str], size: int) -> dict[int, list[str]]:
    """Keys grouped by owning member, each group in the order the keys came."""
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(owner(key, size), []).append(key)
    return groups


def moved(keys: Sequence[str], old_size: int, new_size: int) -> list[str]:
    """The keys whose owner changes when the pool goes from ``old_size`` to ``new_size``."""
    return [k for k in keys if owner(k, old_size) != owner(k, new_size)]


def size_problem(pool: str, size: object, limit: int | None = None) -> str | None:
    """What is wrong with resizing ``pool`` to ``size`` (at most ``limit``, a deployment's
    own bound below the pool's maximum), or ``None``."""
    if pool not in POOLS:
        return f"unknown pool {pool!r}: expected one of {', '.join(POOLS)}"
    if not isinstance(size, int) or isinstance(size, bool):
        return "size must be an integer"
    limit = min(MAX_SIZE[pool], limit or MAX_SIZE[pool])
    if not 1 <= size <= limit:
        return f"size of the {pool} pool must be between 1 and {limit}"
    return None


@dataclass(frozen=True, slots=True)
class Placement:
    """The pools' sizes at one version. Versions only grow: of two placements, the one
    with the higher version is the newer, whoever holds it. Small enough to travel with
    every call, so that a member and its callers correct each other's stale copies."""

    version: int
    game: int
    player: int
    # Keyed by mode (a mode's boards live on one member). Defaulted: a placement stored
    # before the board pool joined the directory has none (see ``StoredPlacement``).
    board: int = 1

    def size(self, pool: PoolName) -> int:
        """How many members ``pool`` has."""
        sizes: dict[PoolName, int] = {"game": self.game, "player": self.player, "board": self.board}
        return sizes[pool]

    def owner(self, pool: PoolName, key: str) -> int:
        """The member of ``pool`` that owns ``key``."""
        return owner(key, self.size(pool))

    def resized(self, pool: PoolName, size: int) -> Placement:
        """The next version, with ``pool`` at ``size``."""
        problem = size_problem(pool, size)
        if problem:
            raise ValueError(problem)
        return replace(self, version=self.version + 1, **{pool: size})

    def newer(self, other: Placement | None) -> bool:
        """True when this placement supersedes ``other``."""
        return other is None or self.version > other.version


@dataclass(frozen=True, slots=True)
class Moved:
    """A member's answer to a call for keys it does not own under ``placement`` (newer
    than the caller's): route again by it."""

    placement: Placement
