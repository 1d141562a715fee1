"""The match saga as a pure state machine: a table of transitions, resume, and a property."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.retry import RetryPolicy
from app.domain.saga import (
    Action,
    ApplyPlayers,
    Command,
    CompensatePlayers,
    CompensationStarted,
    DeadLetterPlayer,
    IllegalTransition,
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
    compensation_order,
    outstanding,
    resume,
    transition,
)

POLICY = RetryPolicy(max_attempts=3)
S, St = SagaState, PlayerStatus
APPLY, COMPENSATE = Action.APPLY, Action.COMPENSATE


def pp(status: PlayerStatus, attempts: int = 0, order: int | None = None) -> PlayerProgress:
    return PlayerProgress(status=status, attempts=attempts, applied_order=order)


def saga(state: SagaState, **players: PlayerProgress) -> Saga:
    """A saga in ``state``; ``applied_count`` follows the highest applied order given."""
    orders = [p.applied_order or 0 for p in players.values()]
    return Saga("m-1", state, dict(players), max(orders, default=0))


@dataclass(frozen=True)
class Row:
    before: Saga
    event: SagaEvent
    state: SagaState
    commands: tuple[Command, ...]
    events: tuple[SagaEvent, ...]


APPLIED1 = pp(St.APPLIED, order=1)
APPLIED2 = pp(St.APPLIED, order=2)
APPLIED3 = pp(St.APPLIED, order=3)
GAVE_UP = "gave up after 3 attempts: timeout"
SCHEDULED1 = PlayerProgress(St.RETRYING, 1, scheduled=True)

TABLE: dict[str, Row] = {
    "start": Row(
        Saga("m-1"),
        SagaStarted(("p1", "p2")),
        S.RUNNING,
        (ApplyPlayers(("p1", "p2")),),
        (SagaStarted(("p1", "p2")),),
    ),
    "one of two applied": Row(
        saga(S.RUNNING, p1=pp(St.PENDING), p2=pp(St.PENDING)),
        PlayerApplied("p1"),
        S.RUNNING,
        (),
        (PlayerApplied("p1"),),
    ),
    "all applied": Row(
        saga(S.RUNNING, p1=APPLIED1, p2=pp(St.PENDING)),
        PlayerApplied("p2", already=True),
        S.COMPLETED,
        (),
        (PlayerApplied("p2", already=True), SagaCompleted()),
    ),
    "retried player applied": Row(
        saga(S.RECOVERING, p1=APPLIED1, p2=pp(St.RETRYING, 2)),
        PlayerApplied("p2"),
        S.COMPLETED,
        (),
        (PlayerApplied("p2"), SagaCompleted()),
    ),
    "transient failure": Row(
        saga(S.RUNNING, p1=pp(St.PENDING), p2=pp(St.PENDING)),
        PlayerFailed("p1", "timeout"),
        S.RECOVERING,
        (ScheduleRetry("p1", 1, APPLY),),
        (PlayerFailed("p1", "timeout"),),
    ),
    "second transient failure": Row(
        saga(S.RECOVERING, p1=pp(St.RETRYING, 1), p2=APPLIED1),
        PlayerFailed("p1", "timeout"),
        S.RECOVERING,
        (ScheduleRetry("p1", 2, APPLY),),
        (PlayerFailed("p1", "timeout"),),
    ),
    "failure at max_attempts, others done: stuck": Row(
        saga(S.RECOVERING, p1=pp(St.RETRYING, 2), p2=APPLIED1),
        PlayerFailed("p1", "timeout"),
        S.STUCK,
        (DeadLetterPlayer("p1", GAVE_UP),),
        (PlayerFailed("p1", "timeout"), PlayerDeadLettered("p1", GAVE_UP), SagaStuck(("p1",))),
    ),
    "failure at max_attempts, another pending: not stuck yet": Row(
        saga(S.RECOVERING, p1=pp(St.RETRYING, 2), p2=pp(St.PENDING)),
        PlayerFailed("p1", "timeout"),
        S.RUNNING,
        (DeadLetterPlayer("p1", GAVE_UP),),
        (PlayerFailed("p1", "timeout"), PlayerDeadLettered("p1", GAVE_UP)),
    ),
    "failure at max_attempts, another retrying: not stuck yet": Row(
        saga(S.RECOVERING, p1=pp(St.RETRYING, 2), p2=pp(St.RETRYING, 1)),
        PlayerFailed("p1", "timeout"),
        S.RECOVERING,
        (DeadLetterPlayer("p1", GAVE_UP),),
        (PlayerFailed("p1", "timeout"), PlayerDeadLettered("p1", GAVE_UP)),
    ),
    "last retrying player applied after another died: stuck": Row(
        saga(S.RECOVERING, p1=pp(St.DEAD, 3), p2=pp(St.RETRYING, 1)),
        PlayerApplied("p2"),
        S.STUCK,
        (),
        (PlayerApplied("p2"), SagaStuck(("p1",))),
    ),
    "non-transient failure: dead at once": Row(
        saga(S.RUNNING, p1=pp(St.PENDING), p2=APPLIED1),
        PlayerFailed("p1", "corrupt delta", transient=False),
        S.STUCK,
        (DeadLetterPlayer("p1", "corrupt delta"),),
        (
            PlayerFailed("p1", "corrupt delta", transient=False),
            PlayerDeadLettered("p1", "corrupt delta"),
            SagaStuck(("p1",)),
        ),
    ),
    "duplicate PlayerApplied: no-op": Row(
        saga(S.RUNNING, p1=APPLIED1, p2=pp(St.PENDING)),
        PlayerApplied("p1"),
        S.RUNNING,
        (),
        (),
    ),
    "stale failure of an applied player: no-op": Row(
        saga(S.RUNNING, p1=APPLIED1, p2=pp(St.PENDING)),
        PlayerFailed("p1", "timeout"),
        S.RUNNING,
        (),
        (),
    ),
    "redelivered failure of a dead player: no second dead letter": Row(
        saga(S.STUCK, p1=pp(St.DEAD, 3), p2=APPLIED1),
        PlayerFailed("p1", "timeout"),
        S.STUCK,
        (),
        (),
    ),
    "transient failure after a permanent one does not revive the player": Row(
        saga(S.STUCK, p1=pp(St.DEAD, 1), p2=APPLIED1),
        PlayerFailed("p1", "timeout"),
        S.STUCK,
        (),
        (),
    ),
    "late success of a dead player completes the saga": Row(
        saga(S.STUCK, p1=pp(St.DEAD, 3), p2=APPLIED1),
        PlayerApplied("p1"),
        S.COMPLETED,
        (),
        (PlayerApplied("p1"), SagaCompleted()),
    ),
    "redrive of stuck": Row(
        saga(S.STUCK, p1=pp(St.DEAD, 3), p2=APPLIED1, p3=pp(St.DEAD, 1)),
        SagaRedriven(),
        S.RUNNING,
        (ApplyPlayers(("p1", "p3")),),
        (SagaRedriven(),),
    ),
    "compensation: latest applied first": Row(
        saga(S.COMPLETED, p1=APPLIED2, p2=APPLIED3, p3=APPLIED1),
        CompensationStarted("cheated"),
        S.COMPENSATING,
        (CompensatePlayers(("p2", "p1", "p3")),),
        (CompensationStarted("cheated"),),
    ),
    "compensation: then the never-applied ones": Row(
        saga(S.RECOVERING, p1=APPLIED1, p2=pp(St.RETRYING, 1), p3=APPLIED2, p4=pp(St.PENDING)),
        CompensationStarted(),
        S.COMPENSATING,
        (CompensatePlayers(("p3", "p1", "p2", "p4")),),
        (CompensationStarted(),),
    ),
    "compensation of a stuck saga includes the dead": Row(
        saga(S.STUCK, p1=pp(St.DEAD, 3), p2=APPLIED1),
        CompensationStarted(),
        S.COMPENSATING,
        (CompensatePlayers(("p2", "p1")),),
        (CompensationStarted(),),
    ),
    "compensation before the start voids every player": Row(
        Saga("m-1"),
        CompensationStarted("cheated", ("p1", "p2")),
        S.COMPENSATING,
        (CompensatePlayers(("p1", "p2")),),
        (CompensationStarted("cheated", ("p1", "p2")),),
    ),
    "compensation started twice: no-op": Row(
        saga(S.COMPENSATING, p1=APPLIED1),
        CompensationStarted(),
        S.COMPENSATING,
        (),
        (),
    ),
    "late PlayerApplied during compensation": Row(
        saga(S.COMPENSATING, p1=pp(St.COMPENSATED, order=1), p2=pp(St.RETRYING, 1)),
        PlayerApplied("p2"),
        S.COMPENSATING,
        (CompensatePlayers(("p2",)),),
        (PlayerApplied("p2"),),
    ),
    "PlayerApplied after the player was compensated: no-op": Row(
        saga(S.COMPENSATING, p1=pp(St.COMPENSATED), p2=APPLIED1),
        PlayerApplied("p1"),
        S.COMPENSATING,
        (),
        (),
    ),
    "one of two compensated": Row(
        saga(S.COMPENSATING, p1=APPLIED1, p2=APPLIED2),
        PlayerCompensated("p2"),
        S.COMPENSATING,
        (),
        (PlayerCompensated("p2"),),
    ),
    "all compensated": Row(
        saga(S.COMPENSATING, p1=APPLIED1, p2=pp(St.COMPENSATED, order=2)),
        PlayerCompensated("p1"),
        S.COMPENSATED,
        (),
        (PlayerCompensated("p1"), SagaCompensated()),
    ),
    "compensation failure retries": Row(
        saga(S.COMPENSATING, p1=APPLIED1),
        PlayerFailed("p1", "timeout"),
        S.COMPENSATING,
        (ScheduleRetry("p1", 1, COMPENSATE),),
        (PlayerFailed("p1", "timeout"),),
    ),
    "compensation failure past max_attempts still retries": Row(
        saga(S.COMPENSATING, p1=pp(St.RETRYING, 7)),
        PlayerFailed("p1", "timeout"),
        S.COMPENSATING,
        (ScheduleRetry("p1", 8, COMPENSATE),),
        (PlayerFailed("p1", "timeout"),),
    ),
    "compensation failure of a dead player retries": Row(
        saga(S.COMPENSATING, p1=pp(St.DEAD, 3), p2=pp(St.COMPENSATED)),
        PlayerFailed("p1", "timeout"),
        S.COMPENSATING,
        (ScheduleRetry("p1", 4, COMPENSATE),),
        (PlayerFailed("p1", "timeout"),),
    ),
    "non-transient compensation failure still retries": Row(
        saga(S.COMPENSATING, p1=APPLIED1),
        PlayerFailed("p1", "corrupt", transient=False),
        S.COMPENSATING,
        (ScheduleRetry("p1", 1, COMPENSATE),),
        (PlayerFailed("p1", "corrupt", transient=False),),
    ),
    "stale failure of a compensated player: no-op": Row(
        saga(S.COMPENSATING, p1=pp(St.COMPENSATED), p2=APPLIED1),
        PlayerFailed("p1", "timeout"),
        S.COMPENSATING,
        (),
        (),
    ),
    "retry scheduled is only logged": Row(
        saga(S.RECOVERING, p1=pp(St.RETRYING, 1)),
        RetryScheduled("p1", 1, 1.5),
        S.RECOVERING,
        (),
        (RetryScheduled("p1", 1, 1.5),),
    ),
    "a retry scheduled again is not logged again (the bus dropped the repeat)": Row(
        saga(S.RECOVERING, p1=SCHEDULED1),
        RetryScheduled("p1", 1, 0.4),
        S.RECOVERING,
        (),
        (),
    ),
    "the schedule of an older attempt is stale": Row(
        saga(S.RECOVERING, p1=pp(St.RETRYING, 2)),
        RetryScheduled("p1", 1, 0.4),
        S.RECOVERING,
        (),
        (),
    ),
    "a schedule logged after the retry ran is stale": Row(
        saga(S.COMPLETED, p1=APPLIED1),
        RetryScheduled("p1", 1, 0.4),
        S.COMPLETED,
        (),
        (),
    ),
    "a retry's next failure needs a schedule of its own": Row(
        saga(S.RECOVERING, p1=SCHEDULED1, p2=APPLIED1),
        PlayerFailed("p1", "timeout"),
        S.RECOVERING,
        (ScheduleRetry("p1", 2, APPLY),),
        (PlayerFailed("p1", "timeout"),),
    ),
}


@pytest.mark.parametrize("row", TABLE.values(), ids=TABLE.keys())
def test_transition(row: Row) -> None:
    step = transition(row.before, row.event, POLICY)
    assert step.saga.state is row.state
    assert step.commands == row.commands
    assert step.events == row.events
    assert set(step.saga.players) == set(row.before.players) or not row.before.players


def test_a_no_op_returns_the_saga_unchanged() -> None:
    before = TABLE["duplicate PlayerApplied: no-op"].before
    assert transition(before, PlayerApplied("p1"), POLICY).saga == before


def test_applied_players_get_increasing_application_order() -> None:
    s = transition(Saga("m-1"), SagaStarted(("p1", "p2", "p3")), POLICY).saga
    for pid in ("p3", "p1", "p2"):
        s = transition(s, PlayerApplied(pid), POLICY).saga
    assert {p: s.players[p].applied_order for p in s.players} == {"p3": 1, "p1": 2, "p2": 3}
    assert compensation_order(s) == ("p2", "p1", "p3")


def test_failures_record_attempts_and_error_and_success_clears_the_error() -> None:
    s = saga(S.RUNNING, p1=pp(St.PENDING))
    s = transition(s, PlayerFailed("p1", "throttled"), POLICY).saga
    assert (s.players["p1"].attempts, s.players["p1"].error) == (1, "throttled")
    s = transition(s, PlayerApplied("p1"), POLICY).saga
    assert (s.players["p1"].status, s.players["p1"].error) == (St.APPLIED, None)


def test_redrive_resets_attempts_so_the_player_gets_a_full_set_of_retries() -> None:
    s = TABLE["redrive of stuck"].before
    s = transition(s, SagaRedriven(), POLICY).saga
    assert s.players["p1"] == PlayerProgress()
    step = transition(s, PlayerFailed("p1", "timeout"), POLICY)
    assert step.commands[0] == ScheduleRetry("p1", 1, APPLY)


@pytest.mark.parametrize("max_attempts", [1, 2, 5])
def test_dead_letter_after_exactly_max_attempts_failures(max_attempts: int) -> None:
    policy = RetryPolicy(max_attempts=max_attempts)
    s = transition(Saga("m-1"), SagaStarted(("p1",)), policy).saga
    for attempt in range(1, max_attempts):
        step = transition(s, PlayerFailed("p1", "timeout"), policy)
        assert step.commands == (ScheduleRetry("p1", attempt, APPLY),)
        s = step.saga
    step = transition(s, PlayerFailed("p1", "timeout"), policy)
    assert isinstance(step.commands[0], DeadLetterPlayer)
    assert step.saga.state is S.STUCK
    assert step.saga.players["p1"].attempts == max_attempts


# ---- illegal transitions ---------------------------------------------------------------

ILLEGAL: dict[str, tuple[Saga, SagaEvent]] = {
    "start twice": (saga(S.RUNNING, p1=pp(St.PENDING)), SagaStarted(("p1",))),
    "start a completed saga": (saga(S.COMPLETED, p1=APPLIED1), SagaStarted(("p1",))),
    "apply of an unknown player": (saga(S.RUNNING, p1=pp(St.PENDING)), PlayerApplied("p9")),
    "failure of an unknown player": (
        saga(S.RUNNING, p1=pp(St.PENDING)),
        PlayerFailed("p9", "x"),
    ),
    "retry of an unknown player": (
        saga(S.RECOVERING, p1=pp(St.RETRYING, 1)),
        RetryScheduled("p9", 1, 1.0),
    ),
    "compensated while running": (saga(S.RUNNING, p1=APPLIED1), PlayerCompensated("p1")),
    "compensated once completed": (saga(S.COMPLETED, p1=APPLIED1), PlayerCompensated("p1")),
    "compensated once compensated": (
        saga(S.COMPENSATED, p1=pp(St.COMPENSATED)),
        PlayerCompensated("p1"),
    ),
    "compensated unknown player": (
        saga(S.COMPENSATING, p1=APPLIED1),
        PlayerCompensated("p9"),
    ),
    "redrive while compensating": (saga(S.COMPENSATING, p1=pp(St.DEAD, 3)), SagaRedriven()),
    "redrive before start": (Saga("m-1"), SagaRedriven()),
    "compensation before the start, not naming the players": (Saga("m-1"), CompensationStarted()),
    "an output event as input": (saga(S.RUNNING, p1=pp(St.PENDING)), SagaCompleted()),
}


@pytest.mark.parametrize(("before", "event"), ILLEGAL.values(), ids=ILLEGAL.keys())
def test_illegal_transitions_raise(before: Saga, event: SagaEvent) -> None:
    with pytest.raises(IllegalTransition):
        transition(before, event, POLICY)


# ---- resume ----------------------------------------------------------------------------

RESUME: dict[str, tuple[Saga, tuple[Command, ...]]] = {
    "accepted": (Saga("m-1"), ()),
    "running with pending and retrying": (
        saga(S.RUNNING, p1=pp(St.PENDING), p2=pp(St.RETRYING, 2), p3=APPLIED1, p4=pp(St.PENDING)),
        (ApplyPlayers(("p1", "p4")), ScheduleRetry("p2", 2, APPLY)),
    ),
    "recovering": (
        saga(S.RECOVERING, p1=APPLIED1, p2=pp(St.RETRYING, 3)),
        (ScheduleRetry("p2", 3, APPLY),),
    ),
    "recovering, one retry's schedule logged: both sent (the logged one may not be out)": (
        saga(S.RECOVERING, p1=APPLIED1, p2=SCHEDULED1, p3=pp(St.RETRYING, 2)),
        (ScheduleRetry("p2", 1, APPLY), ScheduleRetry("p3", 2, APPLY)),
    ),
    # Its dead letter again (the bus drops the repeat): it may have been lost in the
    # outbox of a command that failed after logging the death.
    "stuck waits for an operator": (
        saga(S.STUCK, p1=PlayerProgress(St.DEAD, 3, None, "disk on fire"), p2=APPLIED1),
        (DeadLetterPlayer("p1", "disk on fire"),),
    ),
    "compensating": (
        saga(
            S.COMPENSATING,
            p1=APPLIED1,
            p2=pp(St.COMPENSATED, order=3),
            p3=APPLIED2,
            p4=pp(St.RETRYING, 1),
            p5=pp(St.DEAD, 3),
        ),
        (CompensatePlayers(("p3", "p1", "p5")), ScheduleRetry("p4", 1, COMPENSATE)),
    ),
    "compensating, only retries left": (
        saga(S.COMPENSATING, p1=pp(St.COMPENSATED), p2=pp(St.RETRYING, 4)),
        (ScheduleRetry("p2", 4, COMPENSATE),),
    ),
    "completed": (saga(S.COMPLETED, p1=APPLIED1), ()),
    "compensated": (saga(S.COMPENSATED, p1=pp(St.COMPENSATED)), ()),
}


@pytest.mark.parametrize(("before", "commands"), RESUME.values(), ids=RESUME.keys())
def test_resume(before: Saga, commands: tuple[Command, ...]) -> None:
    assert resume(before) == commands


OVERDUE: dict[str, tuple[Saga, tuple[Command, ...]]] = {
    "accepted": (Saga("m-1"), ()),
    "running: retrying players are tried now, not scheduled again": (
        saga(S.RUNNING, p1=pp(St.PENDING), p2=pp(St.RETRYING, 2), p3=APPLIED1),
        (ApplyPlayers(("p1", "p2")),),
    ),
    "recovering": (
        saga(S.RECOVERING, p1=APPLIED1, p2=pp(St.RETRYING, 3), p3=SCHEDULED1),
        (ApplyPlayers(("p2", "p3")),),
    ),
    "stuck still waits for an operator": (saga(S.STUCK, p1=pp(St.DEAD, 3), p2=APPLIED1), ()),
    "compensating: every player not reverted, latest applied first": (
        saga(
            S.COMPENSATING,
            p1=APPLIED1,
            p2=pp(St.COMPENSATED, order=3),
            p3=APPLIED2,
            p4=pp(St.RETRYING, 1),
        ),
        (CompensatePlayers(("p3", "p1", "p4")),),
    ),
    "completed": (saga(S.COMPLETED, p1=APPLIED1), ()),
}


@pytest.mark.parametrize(("before", "commands"), OVERDUE.values(), ids=OVERDUE.keys())
def test_resume_overdue(before: Saga, commands: tuple[Command, ...]) -> None:
    assert resume(before, overdue=True) == commands


def test_an_overdue_retry_that_fails_again_schedules_the_next_attempt() -> None:
    before = saga(S.RECOVERING, p1=APPLIED1, p2=pp(St.RETRYING, 1))
    step = transition(before, PlayerFailed("p2", "timeout"), POLICY)
    assert step.commands == (ScheduleRetry("p2", 2, APPLY),)


# ---- property: any interleaving of applies and transient failures ----------------------

PLAYERS = ("p1", "p2", "p3", "p4")


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, len(PLAYERS)),
    script=st.lists(st.tuples(st.integers(0, len(PLAYERS) - 1), st.booleans()), max_size=40),
)
def test_no_interleaving_loses_a_player(n: int, script: list[tuple[int, bool]]) -> None:
    ids = PLAYERS[:n]
    step = transition(Saga("m-1"), SagaStarted(ids), POLICY)
    s = step.saga
    log: list[SagaEvent] = list(step.events)
    outstanding: dict[str, Command] = {pid: step.commands[0] for pid in ids}
    for index, applied in script:
        pid = ids[index % n]
        was_applied = s.players[pid].status is St.APPLIED
        event = PlayerApplied(pid) if applied else PlayerFailed(pid, "timeout")
        step = transition(s, event, POLICY)
        s = step.saga
        log.extend(step.events)
        for command in step.commands:
            assert isinstance(command, ScheduleRetry | DeadLetterPlayer)
            outstanding[command.player_id] = command
        # Nobody appears or disappears, and an applied player stays applied.
        assert tuple(s.players) == ids
        assert s.players[pid].status is St.APPLIED or not was_applied
        # Every player not applied has something that will move it on.
        for p, progress in s.players.items():
            last = outstanding[p]
            if progress.status is St.RETRYING:
                assert last == ScheduleRetry(p, progress.attempts, APPLY)
            elif progress.status is St.DEAD:
                assert isinstance(last, DeadLetterPlayer)
                assert progress.attempts == POLICY.max_attempts
            elif progress.status is St.PENDING:
                assert last == ApplyPlayers(ids)
        # The state follows the players.
        statuses = {p.status for p in s.players.values()}
        assert (s.state is S.COMPLETED) == (statuses == {St.APPLIED})
        assert (s.state is S.STUCK) == (
            St.DEAD in statuses and not statuses & {St.PENDING, St.RETRYING}
        )
    orders = sorted(p.applied_order or 0 for p in s.players.values() if p.status is St.APPLIED)
    assert orders == list(range(1, len(orders) + 1))
    assert log.count(SagaCompleted()) == (1 if s.state is S.COMPLETED else 0)
    # Whatever happened, applying the rest completes the saga, once.
    for pid in ids:
        step = transition(s, PlayerApplied(pid), POLICY)
        s = step.saga
        log.extend(step.events)
    assert s.state is S.COMPLETED
    assert log.count(SagaCompleted()) == 1


def test_outstanding_names_what_is_left_to_send_for_a_player() -> None:
    running = saga(S.RECOVERING, p1=pp(St.RETRYING, 2), p2=APPLIED1)
    assert outstanding(running, "p1") == (ScheduleRetry("p1", 2, APPLY),)
    assert outstanding(running, "p2") == ()
    # Logged as scheduled, yet maybe never sent (the command failed after logging it,
    # its outbox with it): sent again, which the bus drops if it did go out.
    logged = saga(S.RECOVERING, p1=SCHEDULED1)
    assert outstanding(logged, "p1") == (ScheduleRetry("p1", 1, APPLY),)
    compensating = saga(S.COMPENSATING, p1=pp(St.RETRYING, 5))
    assert outstanding(compensating, "p1") == (ScheduleRetry("p1", 5, COMPENSATE),)
    dead = Saga("m-1", S.STUCK, {"p1": PlayerProgress(St.DEAD, 3, None, "disk on fire")})
    assert outstanding(dead, "p1") == (DeadLetterPlayer("p1", "disk on fire"),)
