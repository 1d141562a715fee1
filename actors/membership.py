"""What a pool member (a PlayerShard or a GameActor) knows of its pool: its index, the
newest placement it has seen, and the calls it is running (so that a resize can drain it).

Placements travel with every call: a member adopts a caller's newer placement, and answers
a caller with an older one ``Moved`` for keys that are no longer its own. So a restarted
member, or a caller that missed a resize, is corrected by the first call, and the pool
directory does not have to reach every process."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import ray

from app.domain.placement import Moved, Placement, PoolName
from app.runtime.eventloop import loop_name


class Membership:
    """One member's view of its pool."""

    def __init__(self, pool: PoolName, index: int, placement: Placement) -> None:
        self.pool = pool
        self.index = index
        self.placement = placement
        self.in_flight = 0
        self.served = 0  # calls run here (a caller may send many callers' work in one)
        self.moved = 0  # calls answered ``Moved``
        self._idle: asyncio.Event | None = None

    def adopt(self, placement: Placement | None) -> bool:
        """Take ``placement`` if it is newer; True when it was."""
        if placement is None or not placement.newer(self.placement):
            return False
        self.placement = placement
        return True

    def owns(self, key: str) -> bool:
        """True when ``key`` is this member's under the newest placement it knows."""
        return self.placement.owner(self.pool, key) == self.index

    def check(self, keys: Iterable[str], caller: Placement | None) -> Moved | None:
        """``Moved`` when a key is not this member's (after adopting the caller's
        placement, if newer); ``None`` when the call is for this member. A caller that
        sends no placement (a tool, a test) is served whatever it asks."""
        self.adopt(caller)
        if caller is None or all(self.owns(k) for k in keys):
            return None
        self.moved += 1
        return Moved(self.placement)

    @contextmanager
    def call(self) -> Iterator[None]:
        """Count a call in flight while the block runs."""
        self.in_flight += 1
        self.served += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            if self.in_flight == 0 and self._idle is not None:
                self._idle.set()

    def stats(self) -> dict[str, Any]:
        """What operators see of any member: where it runs and its calls (only inside a
        Ray actor)."""
        context = ray.get_runtime_context()
        return {
            "index": self.index,
            "node_id": context.get_node_id(),
            "pid": os.getpid(),
            # This process replaced one that died (Ray restarted the actor).
            "restarted": context.was_current_actor_reconstructed,
            # uvloop, installed by Ray's worker process when it is importable.
            "event_loop": loop_name(),
            "placement_version": self.placement.version,
            "calls_in_flight": self.in_flight,
            "calls_served": self.served,
            "moved": self.moved,
        }

    async def drain(self, timeout_s: float) -> bool:
        """Wait until no call is in flight; False when ``timeout_s`` passed first."""
        try:
            async with asyncio.timeout(timeout_s):
                while self.in_flight > 0:
                    self._idle = asyncio.Event()
                    await self._idle.wait()
            return True
        except TimeoutError:
            return False
