"""The player store: a player's record and match history, and what a write returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from app.domain.stats import ServiceRecord, StatDelta

if TYPE_CHECKING:  # the commands carry a ``CarriedStart``, a port's type: no import cycle
    pass


@dataclass(frozen=True, slots=True)
class PlayerSnapshot:
    """A player's record as last read or written, with the etag that guards the next write
    (``None``: the player has no record row yet)."""

    record: ServiceRecord
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """Result of applying several matches to one player in one transaction."""

    snapshot: PlayerSnapshot
    applied: tuple[str, ...] = ()  # match ids this call added to the record
    already: tuple[str, ...] = ()  # match ids whose marker existed: applied (or voided) before


@dataclass(frozen=True, slots=True)
class RevertOutcome:
    """Result of compensating one match for one player."""

    snapshot: PlayerSnapshot
    reverted: bool  # True: the record held the match and it was subtracted now
    # False: the match was voided before it was applied, or compensated before


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of a player's match history (newest first)."""

    delta: StatDelta
    void: bool = False


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """A page of history and the opaque token of the next page (``None``: no more)."""

    entries: tuple[HistoryEntry, ...]
    continuation: str | None = None


class PlayerStore(Protocol):
    """Player partitions: the service record row plus one marker/history row per match."""

    async def load(self, player_id: str) -> PlayerSnapshot:
        """The player's record and etag; an empty record with etag ``None`` if none."""
        ...

    async def apply(self, snapshot: PlayerSnapshot, deltas: Sequence[StatDelta]) -> ApplyOutcome:
        """Add matches to the record in one transaction: insert each match's ``m:`` marker,
        then write the record guarded by ``snapshot.etag``. A match whose marker exists is
        reported in ``already`` and changes nothing. Raises ``ConcurrencyConflict`` when the
        etag is stale (reload, retry) and ``StorageUnavailable`` for transient failures."""
        ...

    async def revert(self, snapshot: PlayerSnapshot, delta: StatDelta) -> RevertOutcome:
        """Compensate one match: subtract it and mark its history row void, or, if it was
        never applied, insert a void marker so that a late apply becomes a no-op."""
        ...

    async def history(
        self, player_id: str, limit: int, continuation: str | None = None
    ) -> HistoryPage:
        """Match history, newest first; ``continuation`` comes from the previous page."""
        ...

    async def history_row(self, delta: StatDelta) -> HistoryEntry | None:
        """The player's history row of ``delta``'s match (what was applied, or a void
        marker), ``None`` if there is none: one point read."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
