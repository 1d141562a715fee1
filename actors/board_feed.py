"""``BoardFeed``: what the player grains tell the leaderboards.

After a player's update (applied, found applied, reverted, found reverted) the player's
values in that match's mode may have changed, so the (player, mode) is marked; every
``interval_s`` the feed reads each marked player's record (from its activation: the grain
has just been used) and offers the values to the leaderboards in one batch. Offers are
absolute values, so marking again, offering twice or late is harmless, and a burst of
matches of one player costs one offer. A player found already updated is offered too: the
attempt that changed the record may have died before its offer went out (an actor killed
after the write), and this is how the boards catch up with it.

What can still be lost: marks in a shard that dies before its next flush (at most one
interval's worth); the board actors' rebuild from the records repairs that (their
restart, or ``statsaga boards rebuild``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from app.application.ports import Leaderboards, PlayerUpdate, UpdateResult
from app.domain.leaderboards import BoardUpdate, board_values
from app.domain.stats import OTHER, ServiceRecord

log = logging.getLogger(__name__)
FEED_INTERVAL_S = 0.25


class BoardFeed:
    """Marks players whose values may have changed and offers them in batches."""

    def __init__(
        self,
        boards: Leaderboards,
        read: Callable[[str], Awaitable[ServiceRecord]],
        interval_s: float = FEED_INTERVAL_S,
    ) -> None:
        self._boards = boards
        self._read = read
        self._interval_s = interval_s
        self._marked: dict[str, set[str]] = {}
        self._task: asyncio.Task[None] | None = None
        self.offered = 0

    def touched(self, updates: Sequence[PlayerUpdate], results: Sequence[UpdateResult]) -> None:
        """Mark the players of the successful ``results`` in their match's mode."""
        done = {(r.player_id, r.match_id) for r in results if r.ok}
        for u in updates:
            delta = u.delta
            if (delta.player_id, delta.match_id) in done and delta.mode != OTHER:
                self._marked.setdefault(delta.player_id, set()).add(delta.mode)
        if self._marked and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> int:
        """Offer what is marked now; how many updates went out. A player whose record
        could not be read stays marked for the next flush."""
        marked, self._marked = self._marked, {}
        updates: list[BoardUpdate] = []
        for player_id, modes in marked.items():
            try:
                record = await self._read(player_id)
            except Exception as exc:  # storage down: try again next time
                log.info("board values of %s not read (%s); kept for later", player_id, exc)
                self._marked.setdefault(player_id, set()).update(modes)
                continue
            updates += [BoardUpdate(m, player_id, board_values(record, m)) for m in modes]
        if updates:
            try:
                await self._boards.offer(updates)
            except Exception as exc:  # no board actor (yet): the values go next time
                log.warning("leaderboard offer failed (%s); kept for later", exc)
                for u in updates:
                    self._marked.setdefault(u.player_id, set()).add(u.mode)
                return 0
            self.offered += len(updates)
        return len(updates)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.flush()

    async def close(self) -> None:
        """Offer what is left, then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
