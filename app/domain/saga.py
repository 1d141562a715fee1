"""The match saga as a pure state machine: ``transition(saga, event)`` returns the next
saga, the commands the coordinator must execute, and the events to append to the log.

Forward recovery: a failed player is retried later; applied players are never touched.
Backward recovery: compensation reverts every player, latest applied first.
The vocabulary (states, events, commands) lives in ``saga_types`` and is re-exported
here, so callers keep using ``app.domain.saga``.
"""

from __future__ import annotations

from dataclasses import replace

from app.domain.retry import RetryPolicy
from app.domain.saga_types import (
    OPEN_STATES,
    Action,
    ApplyPlayers,
    Command,
    CompensatePlayers,
    CompensationStarted,
    DeadLetterPlayer,
    PlayerApplied,
    PlayerCompensated,
    PlayerDeadLettered,
    PlayerFailed,
    PlayerProgress,
    PlayerStatus,
    RetryScheduled,
    Saga,
    SagaCompensated,
    SagaCompleted,
    SagaEvent,
    SagaRedriven,
    SagaStarted,
    SagaState,
    SagaStuck,
    ScheduleRetry,
    Step,
)

# The vocabulary is re-exported: callers import the whole saga from this module.
__all__ = [
    "OPEN_STATES",
    "Action",
    "ApplyPlayers",
    "Command",
    "CompensatePlayers",
    "CompensationStarted",
    "DeadLetterPlayer",
    "IllegalTransition",
    "PlayerApplied",
    "PlayerCompensated",
    "PlayerDeadLettered",
    "PlayerFailed",
    "PlayerProgress",
    "PlayerStatus",
    "RetryScheduled",
    "Saga",
    "SagaCompensated",
    "SagaCompleted",
    "SagaEvent",
    "SagaRedriven",
    "SagaStarted",
    "SagaState",
    "SagaStuck",
    "ScheduleRetry",
    "Step",
    "compensation_order",
    "outstanding",
    "resume",
    "transition",
]


class IllegalTransition(ValueError):
    """The event cannot happen in the saga's current state (a bug or a stale message)."""


_TERMINAL = {SagaState.COMPLETED, SagaState.COMPENSATED}
_COMPENSATION = {SagaState.COMPENSATING, SagaState.COMPENSATED}
_SETTLED = {PlayerStatus.APPLIED, PlayerStatus.COMPENSATED}


def _set(saga: Saga, player_id: str, **changes: object) -> Saga:
    if player_id not in saga.players:
        raise IllegalTransition(f"{player_id!r} is not a player of match {saga.match_id!r}")
    players = dict(saga.players)
    players[player_id] = replace(players[player_id], **changes)  # type: ignore[arg-type]
    return replace(saga, players=players)


def _settle(saga: Saga, events: list[SagaEvent]) -> Saga:
    """Derive the saga state from its players and log the terminal event when reached."""
    statuses = [p.status for p in saga.players.values()]
    if saga.state in _COMPENSATION:
        if saga.state is SagaState.COMPENSATING and all(
            s is PlayerStatus.COMPENSATED for s in statuses
        ):
            events.append(SagaCompensated())
            return replace(saga, state=SagaState.COMPENSATED)
        return saga
    if PlayerStatus.RETRYING in statuses:
        state = SagaState.RECOVERING
    elif PlayerStatus.PENDING in statuses:
        state = SagaState.RUNNING
    elif PlayerStatus.DEAD in statuses:
        state = SagaState.STUCK
    else:
        state = SagaState.COMPLETED
    if state is not saga.state:
        if state is SagaState.COMPLETED:
            events.append(SagaCompleted())
        elif state is SagaState.STUCK:
            dead = tuple(p for p, s in saga.players.items() if s.status is PlayerStatus.DEAD)
            events.append(SagaStuck(dead))
    return replace(saga, state=state)


def transition(saga: Saga, event: SagaEvent, policy: RetryPolicy) -> Step:
    """Apply one event to the saga: the next state, the commands, and the events to log."""
    events: list[SagaEvent] = [event]
    commands: list[Command] = []
    action = Action.COMPENSATE if saga.state in _COMPENSATION else Action.APPLY
    match event:
        case SagaStarted(player_ids=ids):
            if saga.state is not SagaState.ACCEPTED:
                raise IllegalTransition(f"saga {saga.match_id!r} already started")
            players = {pid: PlayerProgress() for pid in ids}
            saga = replace(saga, state=SagaState.RUNNING, players=players)
            commands.append(ApplyPlayers(tuple(ids)))
        case PlayerApplied(player_id=pid):
            current = saga.players.get(pid)
            if current is not None and current.status in _SETTLED:
                return Step(saga)  # a duplicate or stale report: nothing new to log
            order = saga.applied_count + 1
            saga = _set(
                saga,
                pid,
                status=PlayerStatus.APPLIED,
                applied_order=order,
                error=None,
                scheduled=False,
            )
            saga = replace(saga, applied_count=order)
            if action is Action.COMPENSATE:
                # A late apply landed during compensation: it must be reverted too.
                commands.append(CompensatePlayers((pid,)))
        case PlayerFailed(player_id=pid, error=error, transient=transient):
            done = (
                {PlayerStatus.COMPENSATED}
                if action is Action.COMPENSATE
                else {PlayerStatus.APPLIED, PlayerStatus.DEAD}
            )
            if pid in saga.players and saga.players[pid].status in done:
                # Stale: another coordinator (or a faster attempt) already settled this
                # player; a failure report from a slower attempt must not undo that.
                # A dead player waits for an operator: a redelivered failure must neither
                # dead-letter it twice nor quietly start retrying it again.
                return Step(saga)
            attempts = saga.players[pid].attempts + 1 if pid in saga.players else 1
            # Compensation must finish: it keeps retrying at the capped delay.
            if (transient and attempts < policy.max_attempts) or action is Action.COMPENSATE:
                saga = _set(
                    saga,
                    pid,
                    status=PlayerStatus.RETRYING,
                    attempts=attempts,
                    error=error,
                    scheduled=False,
                )
                commands.append(ScheduleRetry(pid, attempts, action))
            else:
                reason = error if not transient else f"gave up after {attempts} attempts: {error}"
                saga = _set(
                    saga,
                    pid,
                    status=PlayerStatus.DEAD,
                    attempts=attempts,
                    error=error,
                    scheduled=False,
                )
                commands.append(DeadLetterPlayer(pid, reason))
                events.append(PlayerDeadLettered(pid, reason))
        case RetryScheduled(player_id=pid, attempt=attempt):
            progress = _set(saga, pid).players[pid]  # checks the player belongs to the match
            if (
                progress.status is not PlayerStatus.RETRYING
                or progress.attempts != attempt
                or progress.scheduled
            ):
                # Logged already (a redelivered message scheduled it again: the bus drops
                # the repeat, whose delay never applied), or stale: the log keeps the first.
                return Step(saga)
            saga = _set(saga, pid, scheduled=True)
        case SagaRedriven():
            if saga.state in _COMPENSATION or saga.state is SagaState.ACCEPTED:
                raise IllegalTransition(f"saga {saga.match_id!r} is {saga.state}: no redrive")
            dead = [p for p, s in saga.players.items() if s.status is PlayerStatus.DEAD]
            for pid in dead:
                saga = _set(saga, pid, status=PlayerStatus.PENDING, attempts=0, error=None)
            commands.append(ApplyPlayers(tuple(dead)))
        case CompensationStarted(player_ids=ids):
            if saga.state in _COMPENSATION:
                return Step(saga)
            if saga.state is SagaState.ACCEPTED:
                if not ids:
                    raise IllegalTransition(f"saga {saga.match_id!r} not started: void whom?")
                saga = replace(saga, players={pid: PlayerProgress() for pid in ids})
            saga = replace(saga, state=SagaState.COMPENSATING)
            commands.append(CompensatePlayers(compensation_order(saga)))
        case PlayerCompensated(player_id=pid):
            if saga.state is not SagaState.COMPENSATING:
                raise IllegalTransition(f"saga {saga.match_id!r} is not compensating")
            saga = _set(saga, pid, status=PlayerStatus.COMPENSATED, error=None)
        case _:
            raise IllegalTransition(f"{type(event).__name__} is not an input event")
    return Step(_settle(saga, events), tuple(commands), tuple(events))


def compensation_order(saga: Saga) -> tuple[str, ...]:
    """Players to revert: applied ones latest first, then those never applied (voided)."""
    applied = sorted(
        (p for p, s in saga.players.items() if s.status is PlayerStatus.APPLIED),
        key=lambda p: -(saga.players[p].applied_order or 0),
    )
    rest = [
        p
        for p, s in saga.players.items()
        if s.status not in (PlayerStatus.APPLIED, PlayerStatus.COMPENSATED)
    ]
    return (*applied, *rest)


def resume(saga: Saga, overdue: bool = False) -> tuple[Command, ...]:
    """Commands that pick a saga up where a crashed coordinator left it (from the log).

    Repeating a command is harmless: player steps are idempotent and a retry message's id
    is derived from (match, player, attempt), so the bus drops a duplicate schedule. A
    retry whose schedule is logged is not sent again (it went out before it was logged).

    ``overdue``: the saga stopped moving (the stall sweeper says so), so a scheduled retry
    may have been lost; retrying players are tried now instead of scheduled again (whose
    message the bus could drop as a duplicate). A late original retry is then stale.
    """
    if saga.state in _TERMINAL or saga.state is SagaState.ACCEPTED:
        return ()
    action = Action.COMPENSATE if saga.state is SagaState.COMPENSATING else Action.APPLY
    retrying = tuple(
        ScheduleRetry(p, s.attempts, action)
        for p, s in saga.players.items()
        if s.status is PlayerStatus.RETRYING and not s.scheduled
    )
    if action is Action.COMPENSATE:
        todo = tuple(
            p
            for p in compensation_order(saga)
            if overdue or saga.players[p].status is not PlayerStatus.RETRYING
        )
        if overdue:
            return (CompensatePlayers(todo),) if todo else ()
        return (CompensatePlayers(todo), *retrying) if todo else retrying
    now = {PlayerStatus.PENDING, PlayerStatus.RETRYING} if overdue else {PlayerStatus.PENDING}
    pending = tuple(p for p, s in saga.players.items() if s.status in now)
    if overdue:
        return (ApplyPlayers(pending),) if pending else ()
    return (ApplyPlayers(pending), *retrying) if pending else retrying


def outstanding(saga: Saga, player_id: str) -> tuple[Command, ...]:
    """What the log says is still to be sent for one player: the schedule of its pending
    retry, or its dead-letter. (A stale retry message re-sends it, in case the coordinator
    that logged it died before sending.)"""
    progress = saga.players[player_id]
    if progress.status is PlayerStatus.RETRYING and not progress.scheduled:
        action = Action.COMPENSATE if saga.state in _COMPENSATION else Action.APPLY
        return (ScheduleRetry(player_id, progress.attempts, action),)
    if progress.status is PlayerStatus.DEAD:
        return (DeadLetterPlayer(player_id, progress.error or "dead"),)
    return ()
