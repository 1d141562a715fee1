"""The match saga as a pure state machine: ``transition(saga, event)`` returns the next
saga, the commands the coordinator must execute, and the events to append to the log.

Forward recovery: a failed player is retried later; applied players are never touched.
Backward recovery: compensation reverts every player, latest applied first.

Each input event has one handler, found in ``_HANDLERS`` by the event's type (as
eventsourcing's aggregates do): a handler either ignores a stale or repeated event
(``Step(saga)``, nothing to log) or returns what the event changed, settled by
``_logged``. The vocabulary (states, events, commands) lives in ``saga_types`` and is
re-exported here, so callers keep using ``app.domain.saga``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

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


def transition(saga: Saga, event: SagaEvent, policy: RetryPolicy) -> Step:
    """Apply one event to the saga: the next state, the commands, and the events to log."""
    handler = _HANDLERS.get(type(event))
    if handler is None:
        # Outcome events (completed, stuck, ...) are derived here, never fed back in.
        raise IllegalTransition(f"{type(event).__name__} is not an input event")
    return handler(saga, event, policy)


# ---- one handler per input event --------------------------------------------------------


def _on_saga_started(saga: Saga, event: SagaStarted, policy: RetryPolicy) -> Step:
    if saga.state is not SagaState.ACCEPTED:
        raise IllegalTransition(f"saga {saga.match_id!r} already started")
    players = {pid: PlayerProgress() for pid in event.player_ids}
    saga = replace(saga, state=SagaState.RUNNING, players=players)
    return _logged(saga, event, ApplyPlayers(tuple(event.player_ids)))


def _on_player_applied(saga: Saga, event: PlayerApplied, policy: RetryPolicy) -> Step:
    pid = event.player_id
    current = saga.players.get(pid)
    if current is not None and current.status in _SETTLED:
        return Step(saga)  # a duplicate or stale report: nothing new to log
    order = saga.applied_count + 1
    applied = _set(
        saga, pid, status=PlayerStatus.APPLIED, applied_order=order, error=None, scheduled=False
    )
    applied = replace(applied, applied_count=order)
    if _action(saga) is Action.COMPENSATE:
        # A late apply landed during compensation: it must be reverted too.
        return _logged(applied, event, CompensatePlayers((pid,)))
    return _logged(applied, event)


def _on_player_failed(saga: Saga, event: PlayerFailed, policy: RetryPolicy) -> Step:
    pid, action = event.player_id, _action(saga)
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
    if (event.transient and attempts < policy.max_attempts) or action is Action.COMPENSATE:
        saga = _set(
            saga,
            pid,
            status=PlayerStatus.RETRYING,
            attempts=attempts,
            error=event.error,
            scheduled=False,
        )
        return _logged(saga, event, ScheduleRetry(pid, attempts, action))
    reason = (
        event.error if not event.transient else f"gave up after {attempts} attempts: {event.error}"
    )
    saga = _set(
        saga, pid, status=PlayerStatus.DEAD, attempts=attempts, error=event.error, scheduled=False
    )
    return _logged(
        saga, event, DeadLetterPlayer(pid, reason), also=(PlayerDeadLettered(pid, reason),)
    )


def _on_retry_scheduled(saga: Saga, event: RetryScheduled, policy: RetryPolicy) -> Step:
    pid = event.player_id
    progress = _set(saga, pid).players[pid]  # checks the player belongs to the match
    if (
        progress.status is not PlayerStatus.RETRYING
        or progress.attempts != event.attempt
        or progress.scheduled
    ):
        # Logged already (a redelivered message scheduled it again: the bus drops
        # the repeat, whose delay never applied), or stale: the log keeps the first.
        return Step(saga)
    return _logged(_set(saga, pid, scheduled=True), event)


def _on_saga_redriven(saga: Saga, event: SagaRedriven, policy: RetryPolicy) -> Step:
    if saga.state in _COMPENSATION or saga.state is SagaState.ACCEPTED:
        raise IllegalTransition(f"saga {saga.match_id!r} is {saga.state}: no redrive")
    dead = [p for p, s in saga.players.items() if s.status is PlayerStatus.DEAD]
    for pid in dead:
        saga = _set(saga, pid, status=PlayerStatus.PENDING, attempts=0, error=None)
    return _logged(saga, event, ApplyPlayers(tuple(dead)))


def _on_compensation_started(saga: Saga, event: CompensationStarted, policy: RetryPolicy) -> Step:
    if saga.state in _COMPENSATION:
        return Step(saga)
    if saga.state is SagaState.ACCEPTED:
        if not event.player_ids:
            raise IllegalTransition(f"saga {saga.match_id!r} not started: void whom?")
        saga = replace(saga, players={pid: PlayerProgress() for pid in event.player_ids})
    saga = replace(saga, state=SagaState.COMPENSATING)
    return _logged(saga, event, CompensatePlayers(compensation_order(saga)))


def _on_player_compensated(saga: Saga, event: PlayerCompensated, policy: RetryPolicy) -> Step:
    if saga.state is not SagaState.COMPENSATING:
        raise IllegalTransition(f"saga {saga.match_id!r} is not compensating")
    saga = _set(saga, event.player_id, status=PlayerStatus.COMPENSATED, error=None)
    return _logged(saga, event)


# Each handler takes the event type it is listed under; outcome events have none.
_HANDLERS: dict[type[SagaEvent], Callable[[Saga, Any, RetryPolicy], Step]] = {
    SagaStarted: _on_saga_started,
    PlayerApplied: _on_player_applied,
    PlayerFailed: _on_player_failed,
    RetryScheduled: _on_retry_scheduled,
    SagaRedriven: _on_saga_redriven,
    CompensationStarted: _on_compensation_started,
    PlayerCompensated: _on_player_compensated,
}


# ---- what the handlers share ------------------------------------------------------------


def _action(saga: Saga) -> Action:
    """What a player step does in the saga's current state."""
    return Action.COMPENSATE if saga.state in _COMPENSATION else Action.APPLY


def _logged(
    saga: Saga, event: SagaEvent, *commands: Command, also: tuple[SagaEvent, ...] = ()
) -> Step:
    """The step for an event that changed the saga: the event is logged (then ``also``),
    and the saga settled, which may log its terminal event too."""
    events: list[SagaEvent] = [event, *also]
    return Step(_settle(saga, events), commands, tuple(events))


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
    retry whose schedule is logged is sent again all the same: a coordinator's messages
    leave through an outbox once its command returns, so a command that failed after
    logging the schedule (its save written, the answer lost) took the retry with it.

    A dead player's dead-letter is published again for the same reason (its message id
    is the player's, so the bus drops the repeat too): left in a failed command's outbox,
    it would be missing from the operators' dead letters (the saga stuck, with no dead
    letter to replay).

    ``overdue``: the saga stopped moving (the stall sweeper says so), so a scheduled retry
    may have been lost; retrying players are tried now instead of scheduled again (whose
    message the bus could drop as a duplicate). A late original retry is then stale.
    """
    if saga.state in _TERMINAL or saga.state is SagaState.ACCEPTED:
        return ()
    action = _action(saga)  # COMPENSATE means compensating: a compensated saga returned above
    resend: tuple[Command, ...] = tuple(
        ScheduleRetry(p, s.attempts, action)
        for p, s in saga.players.items()
        if s.status is PlayerStatus.RETRYING
    )
    if not overdue and action is Action.APPLY:  # a compensation's players never die
        resend += tuple(
            DeadLetterPlayer(p, s.error or "dead")
            for p, s in saga.players.items()
            if s.status is PlayerStatus.DEAD
        )
    if action is Action.COMPENSATE:
        todo = tuple(
            p
            for p in compensation_order(saga)
            if overdue or saga.players[p].status is not PlayerStatus.RETRYING
        )
        if overdue:
            return (CompensatePlayers(todo),) if todo else ()
        return (CompensatePlayers(todo), *resend) if todo else resend
    now = {PlayerStatus.PENDING, PlayerStatus.RETRYING} if overdue else {PlayerStatus.PENDING}
    pending = tuple(p for p, s in saga.players.items() if s.status in now)
    if overdue:
        return (ApplyPlayers(pending),) if pending else ()
    return (ApplyPlayers(pending), *resend) if pending else resend


def outstanding(saga: Saga, player_id: str) -> tuple[Command, ...]:
    """What the log says may still be unsent for one player: the schedule of its pending
    retry (logged as scheduled or not: see ``resume``), or its dead-letter. A stale retry
    message re-sends it, in case the command that logged it failed before sending."""
    progress = saga.players[player_id]
    if progress.status is PlayerStatus.RETRYING:
        return (ScheduleRetry(player_id, progress.attempts, _action(saga)),)
    if progress.status is PlayerStatus.DEAD:
        return (DeadLetterPlayer(player_id, progress.error or "dead"),)
    return ()
