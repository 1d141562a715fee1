"""``BoardActor``: one member of the board pool, holding the leaderboards of the modes it
owns in memory (``BoardHost``).

The board pool is one of the pool directory's (``actors/directory.py``): a mode belongs
to the member ``placement.owner("board", mode)`` (rendezvous hashing, as the other
pools), so all four boards of a mode live on one actor and a player's standing in a mode
is one call. Like a PlayerShard (``actors/membership.py``), a member adopts the newer
placement a caller or the directory brings, and answers ``Moved`` for a mode it does not
own. On adopting one:
- the modes it lost are saved (their snapshot) and dropped, so that the new owner loads
  them as they were;
- the modes it gained are loaded from their snapshots and rebuilt from the records, in
  the background, ``HANDOFF_S`` later (time for their previous owner to save and drop
  them: an offer that member still took after the scan began would be missed).
The records are the truth throughout: what a hand-over misses, the next offer of the
player, or a rebuild, puts right.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import ray

from actors.config import ActorConfig, configure_actor_logging, member_name, open_storage
from actors.membership import Membership
from actors.once import BuiltOnce
from app.application.boards import BoardHost
from app.application.ports import BoardPage
from app.domain.leaderboards import BoardUpdate, Standing
from app.domain.placement import Moved, Placement

log = logging.getLogger(__name__)
HANDOFF_S = 1.0


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)
class BoardActor:
    """One member of the board pool. A restarted actor loses nothing durable: its first
    call loads the modes' snapshots and rebuilds them from the records in the background
    (``STATSAGA_BOARD_SNAPSHOT_INTERVAL_S`` bounds what a crash can lose meanwhile)."""

    def __init__(self, index: int, config: ActorConfig, placement: Placement) -> None:
        configure_actor_logging(config, member_name("board", index))
        self._index, self._config = index, config
        self._member = Membership("board", index, placement)
        self._host = BuiltOnce(self._build_host)
        self._saver: asyncio.Task[None] | None = None
        self.handed_over = 0  # modes saved and dropped for their new owner

    async def _build_host(self) -> BoardHost:
        storage = await open_storage(self._config)
        host = BoardHost(
            storage.boards,
            storage.players,
            self._config.board_snapshot_interval_s,
            owns=self._member.owns,
        )
        await host.start()
        self._saver = asyncio.get_running_loop().create_task(host.run())
        return host

    async def offer(
        self, updates: Sequence[BoardUpdate], placement: Placement | None = None
    ) -> Moved | None:
        """Apply the players' new values to this actor's modes (``Moved``, none applied,
        when one of the modes is not its own under the newer placement)."""
        host = await self._host.get()
        moved = await self._check((u.mode for u in updates), placement)
        if moved:
            return moved
        with self._member.call():
            await host.offer(updates)
        return None

    async def page(
        self,
        mode: str,
        stat: str,
        limit: int,
        continuation: str | None = None,
        placement: Placement | None = None,
    ) -> BoardPage | Moved:
        """One page of one board."""
        host = await self._host.get()
        moved = await self._check([mode], placement)
        if moved:
            return moved
        with self._member.call():
            return await host.page(mode, stat, limit, continuation)

    async def standing(
        self, mode: str, player_id: str, placement: Placement | None = None
    ) -> dict[str, Standing] | Moved:
        """A player's standing on the mode's boards."""
        host = await self._host.get()
        moved = await self._check([mode], placement)
        if moved:
            return moved
        with self._member.call():
            return await host.standing(mode, player_id)

    async def adopt(self, placement: Placement) -> list[str]:
        """Take a newer placement (pushed by the pool directory on a resize): hand over
        the modes lost, take on those gained. Returns the modes handed over."""
        await self._host.get()
        return await self._adopt(placement)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until no call is running here (a shrinking pool's surplus member)."""
        return await self._member.drain(timeout_s)

    async def rebuild(self) -> int:
        """Rebuild this actor's modes from the records now (operators); how many records
        were read. Waits for a rebuild already running instead of starting another."""
        host = await self._host.get()
        if host.rebuilding:
            await host.start_rebuild()
            return host.rebuilt_from
        return await host.rebuild()

    async def flush(self) -> int:
        """Save the changed modes now; how many were saved."""
        return await (await self._host.get()).flush()

    async def stats(self) -> dict[str, Any]:
        """Where it runs, its calls, its modes' board sizes and its host's counters."""
        host = await self._host.get()
        return {**self._member.stats(), "modes_handed_over": self.handed_over, **host.stats()}

    async def ping(self) -> int:
        """Liveness probe (opens nothing)."""
        return self._index

    async def _check(self, modes: Iterable[str], placement: Placement | None) -> Moved | None:
        await self._adopt(placement)
        return self._member.check(list(modes), placement)

    async def _adopt(self, placement: Placement | None) -> list[str]:
        before = self._member.placement
        host = self._host.value
        if not self._member.adopt(placement) or host is None:
            return []
        new = self._member.placement
        if new.board == before.board:
            return []  # another pool was resized: the same modes are this member's
        lost = await host.drop()
        self.handed_over += len(lost)
        # Rendezvous hashing: growing moves modes only onto the new members, so a member
        # that was there before gains only when the pool shrinks.
        if new.board < before.board or self._index >= before.board:
            index = self._index
            host.gain(lambda mode: before.owner("board", mode) != index, HANDOFF_S)
        return lost
