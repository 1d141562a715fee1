"""Which grains a host keeps active: a grain is activated by its first call, and
deactivated when idle for the TTL, when the host needs room (least recently used first),
or when its player moved to another shard (once its last queued call is done).
Deactivation writes nothing: every change is durable before the call that made it returns.

The host never holds more than ``capacity`` grains: a call for a new player when every
grain is in a call waits for one to finish (back-pressure), rather than overflowing.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from actors.grain_settings import GrainSettings, HostCounters
from app.application.ports import PlayerSnapshot, PlayerUpdate, UpdateResult


@dataclass(slots=True)
class QueuedUpdate:
    """One queued update of a grain's player, and where its result goes."""

    update: PlayerUpdate
    result: asyncio.Future[UpdateResult]


@dataclass(slots=True)  # thousands per shard: no per-instance __dict__
class Grain:
    """One player's activation: its cached record, its turn lock and its queue."""

    snapshot: PlayerSnapshot | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = 0.0
    waiting: int = 0  # callers in or queued for a turn
    retiring: bool = False  # its player moved: deactivate once the last caller leaves
    fresh: bool = True  # no turn has touched storage yet: its first apply is a cold one
    # This activation created the player's record: the player had no rating before it, so
    # a change computed from a guessed (default) rating is right, however late it lands.
    born: bool = False
    # Updates waiting for a turn; whoever holds the lock next runs them all (group commit).
    queued: list[QueuedUpdate] = field(default_factory=list)

    def idle(self) -> bool:
        """No caller is in or waiting for a turn: it may be deactivated."""
        return self.waiting == 0 and not self.lock.locked()


class GrainActivations:
    """The active grains of one host, least recently used first, at most ``capacity``."""

    def __init__(
        self, settings: GrainSettings, clock: Callable[[], float], counters: HostCounters
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._counters = counters
        self._grains: OrderedDict[str, Grain] = OrderedDict()
        self._room = asyncio.Condition()

    def __contains__(self, player_id: object) -> bool:
        return player_id in self._grains

    async def enter(self, player_id: str) -> Grain:
        """The player's grain (activated if need be), held by one more caller until
        ``leave``; waits for room when every grain is in a call."""
        grain = self._grains.get(player_id)
        while grain is None:
            excess = len(self._grains) + 1 - self._settings.capacity
            if excess <= 0 or self._evict(excess) >= excess:
                grain = self._grains[player_id] = Grain()
                self._counters.peak_active = max(self._counters.peak_active, len(self._grains))
                break
            # Every grain is in a call: wait until one is done rather than overflow.
            self._counters.capacity_waits += 1
            async with self._room:
                await self._room.wait()
            grain = self._grains.get(player_id)
        self._grains.move_to_end(player_id)
        grain.waiting += 1
        grain.retiring = False  # called again: its player is (back) on this shard
        grain.last_used = self._clock()
        return grain

    async def leave(self, player_id: str, grain: Grain) -> None:
        """A caller is done with the grain: a retiring grain goes once idle, and callers
        waiting for room are woken."""
        grain.waiting -= 1
        grain.last_used = self._clock()
        if grain.retiring and grain.idle() and self._grains.get(player_id) is grain:
            del self._grains[player_id]
            self._counters.deactivations += 1
        if grain.waiting == 0:
            async with self._room:
                self._room.notify_all()

    def deactivate(self, player_ids: Sequence[str] | None = None) -> int:
        """Drop activations (all when ``None``) that no call holds; returns how many."""
        victims = list(self._grains) if player_ids is None else list(player_ids)
        dropped = 0
        for pid in victims:
            grain = self._grains.get(pid)
            if grain is not None and grain.idle():
                del self._grains[pid]
                dropped += 1
        self._counters.deactivations += dropped
        return dropped

    def retire(self, keep: Callable[[str], bool]) -> int:
        """Deactivate every grain whose player ``keep`` rejects (it moved to another
        shard): idle ones now, busy ones when their last queued call is done. Returns
        how many are retiring."""
        gone = [pid for pid in self._grains if not keep(pid)]
        for pid in gone:
            self._grains[pid].retiring = True
        self.deactivate(gone)
        return len(gone)

    def players(self) -> list[str]:
        """The players with an activation, least recently used first."""
        return list(self._grains)

    def collect_idle(self) -> int:
        """Deactivate grains idle for longer than the TTL."""
        cutoff = self._clock() - self._settings.idle_ttl_s
        return self.deactivate([p for p, g in self._grains.items() if g.last_used < cutoff])

    def gauges(self) -> dict[str, int]:
        """Grains active, in a turn, and callers queued behind a turn."""
        return {
            "active": len(self._grains),
            "in_flight": sum(1 for g in self._grains.values() if g.lock.locked()),
            "queued": sum(max(g.waiting - 1, 0) for g in self._grains.values()),
        }

    def _evict(self, n: int) -> int:
        """Deactivate up to ``n`` idle grains, least recently used first."""
        idle = [p for p, g in self._grains.items() if g.idle()]
        return self.deactivate(idle[:n])
