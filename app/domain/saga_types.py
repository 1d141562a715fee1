"""The saga's vocabulary: its state, the events it logs and the commands it issues.

Plain frozen values only; what moves a saga from one state to the next is in
``app.domain.saga``, which re-exports every name here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class SagaState(StrEnum):
    """Where a match saga stands; ``OPEN_STATES`` are the ones operators watch."""

    ACCEPTED = "accepted"
    RUNNING = "running"
    RECOVERING = "recovering"
    COMPLETED = "completed"
    STUCK = "stuck"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"


OPEN_STATES = frozenset(
    {
        SagaState.ACCEPTED,
        SagaState.RUNNING,
        SagaState.RECOVERING,
        SagaState.STUCK,
        SagaState.COMPENSATING,
    }
)


class PlayerStatus(StrEnum):
    """Where one player's update stands."""

    PENDING = "pending"
    APPLIED = "applied"
    RETRYING = "retrying"
    DEAD = "dead"
    COMPENSATED = "compensated"


@dataclass(frozen=True, slots=True)
class PlayerProgress:
    """One player's step of the saga."""

    status: PlayerStatus = PlayerStatus.PENDING
    attempts: int = 0
    applied_order: int | None = None
    error: str | None = None
    # The retry of this attempt is on the bus: its ``RetryScheduled`` is logged, and the
    # coordinator sends a schedule before logging it. Nothing sends or logs it again.
    scheduled: bool = False


@dataclass(frozen=True, slots=True)
class Saga:
    """The state of one match saga, rebuilt from the saga log."""

    match_id: str
    state: SagaState = SagaState.ACCEPTED
    players: Mapping[str, PlayerProgress] = field(default_factory=dict)
    applied_count: int = 0


# ---- events (what happened; each is appended to the saga log) -------------------------


@dataclass(frozen=True, slots=True)
class SagaStarted:
    """The coordinator took the saga on; the deltas are stored."""

    player_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PlayerApplied:
    """The player's record includes the match (``already``: it did before this call)."""

    player_id: str
    already: bool = False


@dataclass(frozen=True, slots=True)
class PlayerFailed:
    """The player's update failed; ``transient`` failures are retried."""

    player_id: str
    error: str
    transient: bool = True


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    """A durable retry of the player's update was scheduled ``delay_s`` from now."""

    player_id: str
    attempt: int
    delay_s: float


@dataclass(frozen=True, slots=True)
class PlayerDeadLettered:
    """Retries are exhausted; the update waits for an operator."""

    player_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class SagaCompleted:
    """Every player's record includes the match."""


@dataclass(frozen=True, slots=True)
class SagaStuck:
    """Some player's update is dead-lettered; the rest are done."""

    dead: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SagaRedriven:
    """An operator asked to try the dead players again from attempt zero."""


@dataclass(frozen=True, slots=True)
class CompensationStarted:
    """An operator voided the match: every player is to be reverted.

    ``player_ids``: the match's players. A saga not yet started needs them: its start is
    logged with its first round, so that round may be updating players unlogged, and every
    player is voided (a late apply then lands on a void marker, or is reverted)."""

    reason: str = ""
    player_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlayerCompensated:
    """The player's record no longer includes the match (``reverted``: it had included it)."""

    player_id: str
    reverted: bool = True


@dataclass(frozen=True, slots=True)
class SagaCompensated:
    """The match counts for nobody."""


SagaEvent = (
    SagaStarted
    | PlayerApplied
    | PlayerFailed
    | RetryScheduled
    | PlayerDeadLettered
    | SagaCompleted
    | SagaStuck
    | SagaRedriven
    | CompensationStarted
    | PlayerCompensated
    | SagaCompensated
)

# ---- commands (what the coordinator must do next) -------------------------------------


class Action(StrEnum):
    """What a player step does to the player's partition."""

    APPLY = "apply"
    COMPENSATE = "compensate"


@dataclass(frozen=True, slots=True)
class ApplyPlayers:
    """Apply these players' deltas now (one call per shard)."""

    player_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CompensatePlayers:
    """Revert these players, one after another in this order."""

    player_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScheduleRetry:
    """Schedule a durable retry of one player's step (attempt numbers start at 1)."""

    player_id: str
    attempt: int
    action: Action


@dataclass(frozen=True, slots=True)
class DeadLetterPlayer:
    """Hand the player's step to the operators."""

    player_id: str
    reason: str


Command = ApplyPlayers | CompensatePlayers | ScheduleRetry | DeadLetterPlayer


@dataclass(frozen=True, slots=True)
class Step:
    """The result of one transition."""

    saga: Saga
    commands: tuple[Command, ...] = ()
    events: tuple[SagaEvent, ...] = ()
