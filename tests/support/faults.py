"""Wrappers that make a port fail on purpose, for tests of the failure paths."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.application.ports import (
    ApplyOutcome,
    HistoryEntry,
    HistoryPage,
    PlayerSnapshot,
    PlayerStore,
    RevertOutcome,
)
from app.domain.errors import PermanentError, StorageUnavailable
from app.domain.stats import StatDelta


@dataclass
class FlakyPlayerStore:
    """Fails ``apply`` for chosen players: ``transient[p]`` times, or always if permanent;
    ``lost_answers[p]`` times the apply is done but its answer is lost (a timeout after
    the write)."""

    inner: PlayerStore
    transient: dict[str, int] = field(default_factory=dict)
    permanent: set[str] = field(default_factory=set)
    lost_answers: dict[str, int] = field(default_factory=dict)
    delay_s: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    active: Counter[str] = field(default_factory=Counter)
    overlapped: bool = False

    async def load(self, player_id: str) -> PlayerSnapshot:
        return await self.inner.load(player_id)

    async def apply(self, snapshot: PlayerSnapshot, deltas: Sequence[StatDelta]) -> ApplyOutcome:
        pid = snapshot.record.player_id
        self.calls[pid] += 1
        self.active[pid] += 1
        self.overlapped |= self.active[pid] > 1
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if pid in self.permanent:
                raise PermanentError(f"player {pid} is broken")
            if self.transient.get(pid, 0) > 0:
                self.transient[pid] -= 1
                raise StorageUnavailable(f"injected outage for {pid}")
            outcome = await self.inner.apply(snapshot, deltas)
            if self.lost_answers.get(pid, 0) > 0:
                self.lost_answers[pid] -= 1
                raise StorageUnavailable(f"injected lost answer for {pid}")
            return outcome
        finally:
            self.active[pid] -= 1

    async def revert(self, snapshot: PlayerSnapshot, delta: StatDelta) -> RevertOutcome:
        return await self.inner.revert(snapshot, delta)

    async def history(
        self, player_id: str, limit: int, continuation: str | None = None
    ) -> HistoryPage:
        return await self.inner.history(player_id, limit, continuation)

    async def history_row(self, delta: StatDelta) -> HistoryEntry | None:
        return await self.inner.history_row(delta)

    async def close(self) -> None:
        await self.inner.close()
