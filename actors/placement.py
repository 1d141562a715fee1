"""Placement of keys on pool members by rendezvous (highest random weight) hashing.

Pure and deterministic across processes (no ``hash()`` salt): every API and worker process
computes the same owner for a player id. Growing a pool from n to n+1 moves only ~1/(n+1)
of the keys, all of them to the new member.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence


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
