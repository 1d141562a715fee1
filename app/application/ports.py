"""The ports the use cases need. Adapters in ``storage/`` and ``actors/`` implement them;
``app/bootstrap.py`` is the only place that picks which."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from app.domain.model import Match
from app.domain.placement import Placement, PoolName
from app.domain.saga import Action, Saga, SagaEvent, SagaState
from app.domain.stats import ServiceRecord, StatDelta

if TYPE_CHECKING:  # the commands carry a ``CarriedStart``, a port's type: no import cycle
    from app.application.commands import SagaCommand

# ---- players ---------------------------------------------------------------------------


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

    async def close(self) -> None:
        """Release connections."""
        ...


# ---- matches and the saga log ----------------------------------------------------------


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


# ---- bus -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BusMessage:
    """A message to publish; ``message_id`` drives the bus's duplicate detection."""

    message_id: str
    body: Mapping[str, Any]
    subject: str = ""


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A peek-locked message: settle it with complete, abandon or dead_letter."""

    message: BusMessage
    delivery_count: int
    lock_token: Any = field(compare=False)


# A queue's dead-letter sub-queue is addressed as Service Bus does it, and a dead letter's
# reason and description come with its body under Service Bus's property names.
DEAD_LETTER_SUFFIX = "/$deadletterqueue"
DEAD_LETTER_REASON, DEAD_LETTER_DESCRIPTION = "DeadLetterReason", "DeadLetterErrorDescription"
# Service Bus Standard's largest message (body and properties).
MAX_MESSAGE_BYTES = 256 * 1024


def dead_letter_queue(queue: str) -> str:
    """The address of ``queue``'s dead-letter sub-queue."""
    return queue + DEAD_LETTER_SUFFIX


class MessageBus(Protocol):
    """Queues with peek-lock delivery, scheduling and dead-lettering (Service Bus's model)."""

    async def publish(self, queue: str, message: BusMessage) -> None:
        """Enqueue durably; a repeat of a recent ``message_id`` is dropped. A message over
        Service Bus's limits (id ≤ 128 characters, ≤ 256 KiB) raises ``MessageRefused``."""
        ...

    async def schedule(self, queue: str, message: BusMessage, delay_s: float) -> int:
        """Enqueue to become visible after ``delay_s``; returns a sequence number. Same
        limits as ``publish``."""
        ...

    async def receive(
        self, queue: str, max_messages: int, max_wait_s: float
    ) -> list[ReceivedMessage]:
        """Lock and return up to ``max_messages``; waits at most ``max_wait_s`` for one."""
        ...

    async def peek(self, queue: str, max_messages: int) -> list[BusMessage]:
        """Up to ``max_messages`` from the head of ``queue``, without locking them (the
        dead-letter view; ``queue`` may be ``<name>/$deadletterqueue``)."""
        ...

    async def complete(self, received: ReceivedMessage) -> None:
        """The message's work is durable: remove it."""
        ...

    async def abandon(self, received: ReceivedMessage) -> None:
        """Give the message back for redelivery (its delivery count grows)."""
        ...

    async def dead_letter(self, received: ReceivedMessage, reason: str, description: str) -> None:
        """Move the message to the queue's dead-letter sub-queue."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """How many messages one queue holds, as Service Bus counts them."""

    active: int = 0
    scheduled: int = 0
    dead_letter: int = 0


class QueueStats(Protocol):
    """Queue depths, for metrics and operators (Service Bus's administration API)."""

    async def depths(self, queues: Sequence[str]) -> dict[str, QueueDepth]:
        """The depth of each of ``queues``; raises ``TransientError`` when unreachable."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


# ---- player grains (actors) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlayerUpdate:
    """One idempotent step on one player: apply or compensate one match."""

    action: Action
    delta: StatDelta


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """How one ``PlayerUpdate`` ended."""

    player_id: str
    match_id: str
    ok: bool
    changed: bool = False  # applied or reverted by this call (False: it had been before)
    error: str | None = None
    transient: bool = True


class PlayerGrains(Protocol):
    """The virtual player grains: every read and write of a player goes through them."""

    async def update(self, updates: Sequence[PlayerUpdate]) -> list[UpdateResult]:
        """Run the updates (grouped by shard, concurrently); per-player failures come back
        as results, never as exceptions, so one bad player never hides the others."""
        ...

    async def service_record(self, player_id: str) -> ServiceRecord:
        """The player's record as the grain holds it (activating it if needed)."""
        ...


# ---- saga runners ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message a coordinator wants sent: to a queue now, or ``delay_s`` later."""

    queue: str
    message: BusMessage
    delay_s: float | None = None


@dataclass(frozen=True, slots=True)
class SagaFinish:
    """A call finished its saga: the state it ended in and how long it took, in seconds
    (``None`` where the record cannot tell)."""

    state: str  # completed or compensated
    saga_s: float | None  # began → finished: this run of the saga
    consistency_s: float | None  # accepted → finished, on the saga's first finish only


@dataclass(frozen=True, slots=True)
class SagaReply:
    """A saga's state after a call, what the caller must send before it settles, and
    ``finished`` when this call is the one that finished the saga."""

    state: str
    outbox: tuple[OutgoingMessage, ...] = ()
    finished: SagaFinish | None = None


class SagaRunner(Protocol):
    """Where sagas run: the GameActor pool, or in process for tests."""

    async def handle(self, command: SagaCommand) -> SagaReply:
        """Run one saga command (the coordinator method of its type) and reply."""
        ...


# ---- pools -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredPlacement:
    """The pool directory's durable state: the placement in force, and the sizes the
    deployment configured when it was last reconciled (a changed setting wins over an
    operator's resize; an unchanged one does not undo it)."""

    placement: Placement
    configured_game: int
    configured_player: int
    updated_at: datetime


class PlacementStore(Protocol):
    """Where the pool directory keeps its placement, so that it survives the directory."""

    async def load(self) -> StoredPlacement | None:
        """The stored placement, or ``None`` before the first one."""
        ...

    async def save(self, stored: StoredPlacement) -> None:
        """Store ``stored``; a version older than the stored one raises ``Conflict``."""
        ...


class PoolAdmin(Protocol):
    """The operators' view of the actor pools, and their resize control."""

    async def describe(self) -> dict[str, Any]:
        """Sizes, placement version, and each member's node and counters."""
        ...

    async def resize(self, pool: PoolName, size: int) -> dict[str, Any]:
        """Resize ``pool`` (start or drain and stop members); then ``describe()``."""
        ...
