"""The saga log and the payload archive: a match's summary, its saga, its log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from app.domain.model import Match
from app.domain.saga import Saga, SagaEvent, SagaState
from app.domain.stats import StatDelta

if TYPE_CHECKING:  # the commands carry a ``CarriedStart``, a port's type: no import cycle
    pass


@dataclass(frozen=True, slots=True)
class MatchSummary:
    """What the match partition's summary row says besides the saga state."""

    match_id: str
    mode: str
    map: str
    started_at: datetime
    ended_at: datetime
    payload_hash: str
    player_ids: tuple[str, ...]
    accepted_at: datetime
    # The saga-start message is on the bus: set by the saga's first save (it was delivered)
    # or by the outbox sweeper; the API's own publish is not recorded (two writes saved).
    published: bool = False
    updated_at: datetime | None = None
    finished_at: datetime | None = None  # completed or compensated
    # When this run of the saga began: its SagaStarted, or a compensation's start.
    began_at: datetime | None = None
    # The version of the match's open-saga index row this summary knows (adapters that
    # keep etags: the finishing save drops that row without reading it first).
    index_etag: str | None = None


@dataclass(frozen=True, slots=True)
class SagaRecord:
    """The saga as stored: summary, state, last log sequence number, and the etag that
    guards the next save (a coordinator's lease on the saga)."""

    summary: MatchSummary
    saga: Saga
    seq: int
    etag: str


@dataclass(frozen=True, slots=True)
class CarriedStart:
    """What a saga-start message carries so that the Game actor reads nothing on its first
    delivery: the record ``create`` returned (a saga not yet started: its etag is the
    lease of the first save) and the match's canonical JSON, or ``None`` when the payload
    did not fit in the message (a claim check: it is in the archive under the summary's
    hash)."""

    record: SagaRecord
    payload: str | None = None


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One row of the saga log."""

    seq: int
    at: datetime
    event: SagaEvent


class SagaLog(Protocol):
    """The match partition: summary, one row per player (delta, status), and the log."""

    async def create(
        self, match: Match, accepted_at: datetime, deltas: Mapping[str, StatDelta]
    ) -> tuple[SagaRecord, bool]:
        """Store an accepted match (state ``accepted``, not yet published) with its players'
        ``deltas``, at once (the API passes none: the Game actor aggregates the match, and
        the saga's first save writes them). Returns the record and whether it was created
        now; an existing match with the same payload hash is returned as it is; with
        another hash, raises ``DuplicateMatch``."""
        ...

    async def load(self, match_id: str) -> SagaRecord:
        """The stored saga; raises ``NotFound``."""
        ...

    async def load_with_deltas(self, match_id: str) -> tuple[SagaRecord, dict[str, StatDelta]]:
        """``load`` and ``deltas`` in one read (a coordinator taking a saga on needs both);
        raises ``NotFound``."""
        ...

    async def save(
        self,
        record: SagaRecord,
        saga: Saga,
        events: Sequence[SagaEvent],
        at: datetime,
        deltas: Mapping[str, StatDelta] | None = None,
        began_at: datetime | None = None,
    ) -> SagaRecord:
        """Write the new saga state, the changed player rows (with ``deltas`` when given)
        and the events as log rows, in one transaction guarded by ``record.etag``. Raises
        ``ConcurrencyConflict`` if another coordinator saved in between. ``began_at``: when
        the run these events start began, if earlier than ``at`` (a start logged together
        with its first results)."""
        ...

    async def deltas(self, match_id: str) -> dict[str, StatDelta]:
        """The per-player deltas stored with the match (empty for a match stored before
        deltas came with it, until its saga starts)."""
        ...

    async def log(self, match_id: str) -> list[LogEntry]:
        """The saga log, oldest first."""
        ...

    async def mark_published(self, match_id: str) -> None:
        """Record that the saga-start message is on the bus (the outbox is drained)."""
        ...

    async def unpublished(self, accepted_before: datetime, limit: int) -> list[str]:
        """Ids of stored matches whose saga-start message may never have been published,
        accepted before ``accepted_before`` (the outbox sweeper's work list). Index entries
        that no longer mean anything (published, or a match never stored) are dropped."""
        ...

    async def open_sagas(
        self, accepted_before: datetime, limit: int, state: SagaState | None = None
    ) -> list[SagaRecord]:
        """Sagas not yet completed or compensated, accepted before ``accepted_before``
        (only those in ``state`` when given): the stall sweeper's and operators' view."""
        ...

    async def sagas_in_state(self, state: SagaState, limit: int) -> list[SagaRecord]:
        """Up to ``limit`` sagas in ``state``, any state (a scan where no index helps)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class PayloadArchive(Protocol):
    """Raw match payloads, kept for audits (blob container ``matches``)."""

    async def put(self, match: Match) -> None:
        """Store the canonical payload under ``{match_id}/{payload_hash}.json``;
        idempotent, and a different body never overwrites another's blob."""
        ...

    async def get(self, match_id: str, payload_hash: str) -> dict[str, Any]:
        """The canonical payload as decoded JSON; raises ``NotFound``."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
