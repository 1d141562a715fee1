"""``BoardFeed``: what the player grains tell the leaderboards.

After a player's update (applied, found applied, reverted, found reverted) the player's
values in that match's mode may have changed. At the end of the player's turn the feed
takes them from the record the grain now holds; when it holds none (a match found already
applied: the record moved without this activation seeing it) the player is marked and the
record read at the flush. The host waits for the flush before it answers the call (the
calls answered within ``FLUSH_WINDOW_S`` share one: one offer per board actor for all
their players), so that a saga that completes has its players on the boards, and an
actor that dies after a write but before its answer leaves nothing unsent (its call is
retried, finds the match applied, and offers again).
Offers are absolute values, so offering twice or late is harmless. An offer that fails
(no board actor yet, one restarting) is kept and sent with the next flush, or by the
background loop.
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
RETRY_INTERVAL_S = 1.0
# The shard calls answered within this of one another share one offer per board actor:
# a little latency for fewer calls (each costs both sides ~0.5 ms of CPU, whatever it
# carries).
FLUSH_WINDOW_S = 0.02
# How long a player update may wait for the boards (a member restarting, a pool being
# resized): past it the values are kept for the next flush and the update answers.
OFFER_TIMEOUT_S = 2.0

Values = dict[str, float] | None


class BoardFeed:
    """Collects the players' new values and offers them to the leaderboards."""

    def __init__(
        self,
        boards: Leaderboards,
        read: Callable[[str], Awaitable[ServiceRecord]],
        retry_interval_s: float = RETRY_INTERVAL_S,
        window_s: float = FLUSH_WINDOW_S,
    ) -> None:
        self._boards = boards
        self._read = read
        self._retry_interval_s = retry_interval_s
        self._window_s = window_s
        self._next: asyncio.Task[int] | None = None
        self._ready: dict[tuple[str, str], Values] = {}  # (player, mode) -> values
        self._to_read: dict[str, set[str]] = {}  # player -> modes
        self._retrying: asyncio.Task[None] | None = None
        self._failing = False
        self._flushing = asyncio.Lock()
        self.sent = 0  # updates offered and taken

    def touched(
        self,
        updates: Sequence[PlayerUpdate],
        results: Sequence[UpdateResult],
        record: ServiceRecord | None,
    ) -> None:
        """Note the modes of one player's successful ``results``: their values from
        ``record`` (the grain's record after the turn), or read at the flush without it."""
        done = {(r.player_id, r.match_id) for r in results if r.ok}
        for u in updates:
            pid, mode = u.delta.player_id, u.delta.mode
            if (pid, u.delta.match_id) not in done or mode == OTHER:
                continue
            if record is not None:
                self._ready[(pid, mode)] = board_values(record, mode)
            else:
                self._to_read.setdefault(pid, set()).add(mode)

    async def offered(self) -> None:
        """Return once what is noted now has been offered (or kept, if the boards did not
        take it). Callers within ``window_s`` of one another share one flush: one call
        per board actor for all of them, instead of one for each shard call."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_task(self._flush_soon())
        await asyncio.shield(self._next)

    async def _flush_soon(self) -> int:
        await asyncio.sleep(self._window_s)
        self._next = None  # what is noted from here on goes with the next one
        return await self.flush()

    async def flush(self) -> int:
        """Offer what is noted now; how many updates went out. What could not be read or
        offered is kept for the next flush (and the background loop retries it).

        One flush at a time: a flush that reads a record (slowly, through storage
        faults, say) must not offer it after a later flush offered the player's newer
        values, which it would overwrite on the board."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int:
        ready, self._ready = self._ready, {}
        to_read, self._to_read = self._to_read, {}
        for pid, modes in to_read.items():
            try:
                record = await self._read(pid)
            except Exception as exc:  # storage down: try again later
                log.info("board values of %s not read (%s); kept for later", pid, exc)
                self._to_read.setdefault(pid, set()).update(modes)
                continue
            ready.update({(pid, m): board_values(record, m) for m in modes})
        sent = await self._offer(ready) if ready else 0
        if (self._ready or self._to_read) and self._retrying is None:
            self._retrying = asyncio.get_running_loop().create_task(self._retry())
        return sent

    async def _offer(self, ready: dict[tuple[str, str], Values]) -> int:
        """Offer ``ready``; kept for later when the boards do not take it."""
        updates = [BoardUpdate(mode, pid, values) for (pid, mode), values in ready.items()]
        try:
            await asyncio.wait_for(self._boards.offer(updates), OFFER_TIMEOUT_S)
        except Exception as exc:  # no board actor (yet), one restarting, too slow
            # Said once per outage, not once a second while it lasts.
            level = logging.INFO if self._failing else logging.WARNING
            log.log(level, "leaderboard offer failed (%s); kept for later", exc)
            self._failing = True
            for key, values in ready.items():
                self._ready.setdefault(key, values)  # a newer value noted meanwhile wins
            return 0
        self._failing = False
        self.sent += len(updates)
        return len(updates)

    async def _retry(self) -> None:
        """Offer what failed, every ``retry_interval_s``, until nothing is left."""
        try:
            while self._ready or self._to_read:
                await asyncio.sleep(self._retry_interval_s)
                await self.flush()
        finally:
            self._retrying = None

    async def close(self) -> None:
        """Stop retrying (what is left is for the boards' rebuild)."""
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
