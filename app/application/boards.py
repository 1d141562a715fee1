"""``BoardHost``: the boards of some modes in memory, saved now and then, rebuilt from the
records after a start.

Updates only touch memory. A mode's snapshot (every board of it, one blob) is written
when it changed, at most every ``snapshot_interval_s``: a popular mode's thousands of
updates a second become one write per interval instead of a table write each, which a
single partition (~2,000 entities/s) could not take. What a crash loses (the updates of
the last interval) the rebuild after the next start brings back from the records, which
are the truth; the snapshot only makes the boards right at once after a restart, rather
than after the scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.application.periodic import every
from app.application.ports.boards import BoardPage, BoardSnapshots, RecordScan
from app.domain.leaderboards import (
    STATS,
    Board,
    BoardUpdate,
    ModeBoards,
    Standing,
    record_updates,
)
from app.domain.stats import OTHER

log = logging.getLogger(__name__)


def _every_mode(mode: str) -> bool:
    return True


@dataclass
class BoardHost:
    """``Leaderboards`` for the modes ``owns`` accepts (all, by default), in memory.

    ``start`` loads the snapshots and begins a rebuild from ``scan`` in the background;
    ``run`` saves changed modes every ``snapshot_interval_s`` until ``close``. Offers are
    applied at once; while a rebuild runs they are applied to the boards being served and
    kept, and win over the scan's values for their players when the rebuilt boards take
    over (the scan may have read a record before the match the offer came from).
    """

    snapshots: BoardSnapshots
    scan: RecordScan | None = None
    snapshot_interval_s: float = 10.0
    owns: Callable[[str], bool] = _every_mode
    modes: dict[str, ModeBoards] = field(default_factory=dict)
    snapshots_saved: int = 0
    rebuilds: int = 0
    rebuilt_from: int = 0  # records the last rebuild read
    _dirty: set[str] = field(default_factory=set)
    _during_rebuild: dict[tuple[str, str], BoardUpdate] | None = None
    _rebuild: asyncio.Task[None] | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _scanned_all: asyncio.Event = field(default_factory=asyncio.Event)  # no rebuild runs

    async def start(self, rebuild: bool = True) -> None:
        """Load the owned modes' snapshots; then, with ``rebuild``, rebuild in the
        background from the records (``rebuilding`` says whether it still runs)."""
        for mode in await self.snapshots.modes():
            if self.owns(mode) and mode not in self.modes:
                saved = await self.snapshots.load(mode)
                if saved is not None:
                    self.modes[mode] = ModeBoards.from_snapshot(saved)
        if rebuild and self.scan is not None:
            self.start_rebuild()

    def start_rebuild(self) -> asyncio.Task[None]:
        """Begin a rebuild unless one runs; the task of the one running."""
        if self._rebuild is None or self._rebuild.done():
            self._begin_rebuild()  # now, not when the task first runs: offers before then count
            self._rebuild = asyncio.create_task(self._logged_rebuild(), name="boards rebuild")
        return self._rebuild

    async def _logged_rebuild(self) -> None:
        await self._logged(self._rebuilt())

    @staticmethod
    async def _logged(rebuild: Awaitable[object]) -> None:
        try:
            await rebuild
        except Exception:
            # The boards keep serving what they hold; an operator can rebuild again.
            log.exception("boards rebuild failed")

    def gain(self, gained: Callable[[str], bool], delay_s: float = 0.0) -> asyncio.Task[None]:
        """Take on the modes ``gained`` accepts (a resize gave them to this host), in the
        background: after any rebuild under way and ``delay_s`` (time for their previous
        owner to save and drop them), load their snapshots and rebuild them from the
        records. Until then an offer for one of them starts its boards afresh; the scan,
        which begins after that offer's record was written, has its value too."""
        previous = self._rebuild
        self._rebuild = asyncio.create_task(
            self._logged(self._gained(previous, gained, delay_s)), name="boards gain"
        )
        return self._rebuild

    async def _gained(
        self,
        previous: asyncio.Task[None] | None,
        gained: Callable[[str], bool],
        delay_s: float,
    ) -> None:
        if previous is not None:
            try:
                await asyncio.wait([previous])
            except asyncio.CancelledError:  # ``close``: the rebuild waited for stops too
                previous.cancel()
                raise
        await asyncio.sleep(delay_s)
        while self._during_rebuild is not None:  # an operator's rebuild: it ends first
            await self._scanned_all.wait()
        self._begin_rebuild()
        try:
            for mode in await self.snapshots.modes():
                if gained(mode) and self.owns(mode):
                    await self._load_gained(mode)
        except BaseException:
            self._during_rebuild = None
            self._scanned_all.set()
            raise
        await self._rebuilt(gained)

    async def _load_gained(self, mode: str) -> None:
        """Serve a gained mode from its snapshot (plus what was offered since the gain
        began) while its rebuild runs."""
        saved = await self.snapshots.load(mode)
        if saved is None:
            return
        boards = ModeBoards.from_snapshot(saved)
        for update in (self._during_rebuild or {}).values():
            if update.mode == mode:
                boards.apply(update)
        self.modes[mode] = boards

    async def drop(self) -> list[str]:
        """Save, then forget, the modes this host no longer owns (a resize gave them to
        another member, which loads that snapshot); the modes dropped. A failed save is
        logged: the new owner rebuilds the mode from the records anyway."""
        lost = sorted(mode for mode in self.modes if not self.owns(mode))
        for mode in lost:
            boards = self.modes.get(mode)
            if boards is not None and mode in self._dirty:
                self._dirty.discard(mode)
                try:
                    await self.snapshots.save(mode, boards.to_snapshot())
                    self.snapshots_saved += 1
                except Exception as exc:
                    log.warning(
                        "the boards of %s were not saved before handing over: %s", mode, exc
                    )
            self._dirty.discard(mode)
            self.modes.pop(mode, None)
        if lost:
            log.info("boards handed over: %s", ", ".join(lost))
        return lost

    @property
    def rebuilding(self) -> bool:
        """True while a rebuild runs."""
        return self._during_rebuild is not None

    async def rebuild(self) -> int:
        """Recompute every owned mode's boards from the records, then serve those (plus
        the offers that came meanwhile); how many records the scan read. Modes no record
        plays any more are emptied, and every rebuilt mode is saved at the next flush."""
        self._begin_rebuild()
        return await self._rebuilt()

    def _begin_rebuild(self) -> None:
        if self.scan is None:
            raise RuntimeError("this host has no record scan to rebuild from")
        if self._during_rebuild is not None:
            raise RuntimeError("a rebuild is already running")
        self._during_rebuild = {}  # from here on, offers are kept to win over the scan
        self._scanned_all.clear()

    async def _rebuilt(self, scope: Callable[[str], bool] = _every_mode) -> int:
        """Finish the rebuild begun: of the owned modes ``scope`` accepts (all of them, or
        those just gained); the others keep the boards they are served from."""
        offered = self._during_rebuild
        assert self.scan is not None and offered is not None
        try:
            fresh, count = await self._scanned(self.scan, scope)
            for update in offered.values():
                if scope(update.mode):
                    self._boards_of(fresh, update.mode).apply(update)
        finally:
            self._during_rebuild = None
            self._scanned_all.set()
        for mode in set(self.modes) - set(fresh):
            if scope(mode):
                fresh[mode] = ModeBoards(mode)
        # A mode lost to another member while the scan ran is that member's now.
        fresh = {mode: boards for mode, boards in fresh.items() if self.owns(mode)}
        self.modes.update(fresh)
        self._dirty.update(fresh)
        self.rebuilds += 1
        self.rebuilt_from = count
        log.info("boards rebuilt: %d records, %d offers meanwhile", count, len(offered))
        return count

    async def _scanned(
        self, scan: RecordScan, scope: Callable[[str], bool]
    ) -> tuple[dict[str, ModeBoards], int]:
        fresh: dict[str, ModeBoards] = {}
        count = 0
        async for record in scan.records():
            count += 1
            for update in record_updates(record):
                if self.owns(update.mode) and scope(update.mode):
                    self._boards_of(fresh, update.mode).apply(update)
            if count % 1000 == 0:
                await asyncio.sleep(0)  # a scan of records already read must let offers in
        return fresh, count

    @staticmethod
    def _boards_of(modes: dict[str, ModeBoards], mode: str) -> ModeBoards:
        boards = modes.get(mode)
        if boards is None:
            boards = modes[mode] = ModeBoards(mode)
        return boards

    async def offer(self, updates: Sequence[BoardUpdate]) -> None:
        """Apply each update to its mode's boards (the overflow bucket is no mode: its
        updates never come from ``board_values``, and are dropped here too)."""
        for update in updates:
            if update.mode == OTHER:
                continue
            if self._during_rebuild is not None:
                self._during_rebuild[(update.mode, update.player_id)] = update
            if self._boards_of(self.modes, update.mode).apply(update):
                self._dirty.add(update.mode)

    async def page(
        self, mode: str, stat: str, limit: int, continuation: str | None = None
    ) -> BoardPage:
        """One page of a board (``ValueError``: an unknown stat or a limit out of range;
        ``InvalidContinuation``: a token not of this board)."""
        if stat not in STATS:
            raise ValueError(f"unknown stat {stat!r}: one of {', '.join(STATS)}")
        # A mode nobody played: an empty board, which checks the limit and token alike.
        board = self.modes[mode].boards[stat] if mode in self.modes else Board(stat)
        entries, token = board.page(limit, continuation)
        return BoardPage(mode, stat, tuple(entries), board.size, token)

    async def standing(self, mode: str, player_id: str) -> dict[str, Standing]:
        """The player's standing on each of ``mode``'s boards they are on."""
        boards = self.modes.get(mode)
        return boards.standing(player_id) if boards else {}

    async def flush(self) -> int:
        """Save every mode changed since its last save; how many were saved. A failed
        save stays due for the next flush."""
        saved = 0
        for mode in sorted(self._dirty):
            self._dirty.discard(mode)
            boards = self.modes.get(mode)
            if boards is None:  # dropped meanwhile (``drop`` saved it)
                continue
            try:
                await self.snapshots.save(mode, boards.to_snapshot())
            except BaseException:
                self._dirty.add(mode)
                raise
            saved += 1
        self.snapshots_saved += saved
        return saved

    async def run(self) -> None:
        """Flush every ``snapshot_interval_s`` until ``close``."""
        await every(self.snapshot_interval_s, self._stopping, self.flush, "boards snapshot")

    async def close(self) -> None:
        """Stop ``run`` and any rebuild, and save what changed."""
        self._stopping.set()
        if self._rebuild is not None and not self._rebuild.done():
            self._rebuild.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rebuild
            self._during_rebuild = None  # a task cancelled before it ran never cleared it
            self._scanned_all.set()
        await self.flush()

    def stats(self) -> dict[str, Any]:
        """For operators: each mode's board sizes, and the host's counters."""
        return {
            "modes": {m: {s: b.size for s, b in mb.boards.items()} for m, mb in self.modes.items()},
            "unsaved_modes": len(self._dirty),
            "snapshots_saved": self.snapshots_saved,
            "rebuilding": self.rebuilding,
            "rebuilds": self.rebuilds,
            "rebuilt_from_records": self.rebuilt_from,
        }
