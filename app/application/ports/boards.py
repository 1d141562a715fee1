"""Leaderboards: the boards themselves (``Leaderboards``, hosted in memory), where their
snapshots are kept (``BoardSnapshots``), and the scan of every record a rebuild reads
(``RecordScan``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.domain.leaderboards import BoardUpdate, Entry, Standing
from app.domain.stats import ServiceRecord


@dataclass(frozen=True, slots=True)
class BoardPage:
    """One page of a board: its entries best first, how many players the board holds,
    and the token of the next page (``None``: no more)."""

    mode: str
    stat: str
    entries: tuple[Entry, ...]
    size: int
    continuation: str | None = None


class Leaderboards(Protocol):
    """Every mode's boards, kept up to date by the players' new values."""

    async def offer(self, updates: Sequence[BoardUpdate]) -> None:
        """Apply the players' new values (absolute: a repeat or a late one is harmless).
        Eventually consistent: the boards reflect them soon, not necessarily on return."""
        ...

    async def page(
        self, mode: str, stat: str, limit: int, continuation: str | None = None
    ) -> BoardPage:
        """Up to ``limit`` entries of ``mode``'s ``stat`` board, best first, from the top
        or after ``continuation`` (``InvalidContinuation``: not a token of this board). A
        mode nobody played has an empty board."""
        ...

    async def standing(self, mode: str, player_id: str) -> dict[str, Standing]:
        """The player's rank, percentile and value on each of ``mode``'s boards they are
        on (empty: on none)."""
        ...


class BoardSnapshots(Protocol):
    """One snapshot per mode: the JSON-able form of its boards (``ModeBoards``)."""

    async def save(self, mode: str, snapshot: Mapping[str, Any]) -> None:
        """Replace ``mode``'s snapshot."""
        ...

    async def load(self, mode: str) -> dict[str, Any] | None:
        """``mode``'s snapshot, ``None`` when there is none."""
        ...

    async def modes(self) -> list[str]:
        """The modes that have a snapshot, sorted."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class RecordScan(Protocol):
    """Every player's service record, for rebuilding the boards."""

    def records(self) -> AsyncIterator[ServiceRecord]:
        """Each record once, in no particular order; paged underneath, so a scan of
        millions holds one page in memory."""
        ...
