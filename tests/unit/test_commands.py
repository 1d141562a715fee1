"""Saga commands: every message statsaga sends parses back into the command it asks for,
once, where it enters; a message that asks for none is dead-lettered there with the reason,
never reaching a runner; and each command reaches its own coordinator method."""

from __future__ import annotations

import json
import pickle
from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from app.application.commands import (
    RedriveSaga,
    ResumeSaga,
    RetryPlayer,
    SagaCommand,
    StartSaga,
    VoidMatch,
)
from app.application.messages import (
    MATCHES_QUEUE,
    PLAYER_UPDATES_QUEUE,
    PlayerRetry,
    Rejected,
    match_completed,
    match_invalidated,
    match_redrive,
    match_resume,
    to_command,
)
from app.application.ports import BusMessage, SagaReply
from app.application.runner import _dispatch
from app.application.worker import Worker
from app.domain.saga import Action, SagaState
from storage.memory_bus import DEAD_LETTER_DESCRIPTION, DEAD_LETTER_REASON, InMemoryMessageBus
from tests.unit.test_carried_start import a_match, stack, take


def through_json(message: BusMessage) -> BusMessage:
    """The message as a receiver sees it: its body crossed the bus as JSON."""
    return BusMessage(
        message.message_id, json.loads(json.dumps(dict(message.body))), message.subject
    )


@pytest.mark.parametrize(
    ("queue", "message", "command"),
    [
        (MATCHES_QUEUE, match_completed("m1"), StartSaga("m1")),
        (MATCHES_QUEUE, match_resume("m1", 7), ResumeSaga("m1")),
        (MATCHES_QUEUE, match_redrive("m1", 7), RedriveSaga("m1")),
        (MATCHES_QUEUE, match_invalidated("m1", "cheating"), VoidMatch("m1", "cheating")),
        (MATCHES_QUEUE, BusMessage("x", {"match_id": "m1"}), StartSaga("m1")),  # no subject
        (
            PLAYER_UPDATES_QUEUE,
            PlayerRetry("m1", "p1", 3, Action.COMPENSATE).to_message(),
            RetryPlayer("m1", "p1", 3, Action.COMPENSATE),
        ),
    ],
    ids=["start", "resume", "redrive", "void", "bare", "retry"],
)
def test_every_message_parses_into_the_command_it_asks_for(
    queue: str, message: BusMessage, command: SagaCommand
) -> None:
    assert to_command(queue, through_json(message), first_delivery=True) == command


async def test_a_carried_start_is_handed_on_on_the_first_delivery_only() -> None:
    s = stack()
    await s.service.submit_match(a_match())
    message = through_json((await take(s)).message)
    first = to_command(MATCHES_QUEUE, message, first_delivery=True)
    assert isinstance(first, StartSaga) and first.start is not None
    assert first.start.record.summary.match_id == first.match_id
    assert pickle.loads(pickle.dumps(first)) == first  # what crosses to the GameActor
    assert to_command(MATCHES_QUEUE, message, first_delivery=False) == StartSaga(first.match_id)


@pytest.mark.parametrize(
    ("queue", "body", "description"),
    [
        (MATCHES_QUEUE, {"reason": "no match id"}, "KeyError: 'match_id'"),
        (PLAYER_UPDATES_QUEUE, {"match_id": "m1", "attempt": 1}, "KeyError: 'player_id'"),
        (
            PLAYER_UPDATES_QUEUE,
            {"match_id": "m1", "player_id": "p1", "attempt": "two", "action": "apply"},
            "ValueError: invalid literal for int() with base 10: 'two'",
        ),
        (
            PLAYER_UPDATES_QUEUE,
            {"match_id": "m1", "player_id": "p1", "attempt": None, "action": "apply"},
            "TypeError: ",
        ),
        (
            PLAYER_UPDATES_QUEUE,
            {"match_id": "m1", "player_id": "p1", "attempt": 1, "action": "explode"},
            "ValueError: 'explode' is not a valid Action",
        ),
    ],
    ids=["no-match", "no-player", "bad-attempt", "null-attempt", "bad-action"],
)
def test_a_malformed_body_is_rejected_naming_the_fault(
    queue: str, body: dict[str, Any], description: str
) -> None:
    with pytest.raises(Rejected) as rejected:
        to_command(queue, BusMessage("x", body), first_delivery=True)
    assert rejected.value.reason == "UnprocessableMessage"
    assert rejected.value.description.startswith(description)


def test_a_step_handed_to_the_operators_is_rejected_with_its_error() -> None:
    message = PlayerRetry("m1", "p1", 4, Action.APPLY, "boom").to_message()
    with pytest.raises(Rejected) as rejected:
        to_command(PLAYER_UPDATES_QUEUE, message, first_delivery=True)
    assert (rejected.value.reason, rejected.value.description) == ("PlayerStepFailed", "boom")


class RecordingRunner:
    """A runner that records what it is asked to run."""

    def __init__(self) -> None:
        self.handled: list[SagaCommand] = []

    async def handle(self, command: SagaCommand) -> SagaReply:
        self.handled.append(command)
        return SagaReply("completed")


@pytest.mark.parametrize(
    ("queue", "body", "reason"),
    [
        (PLAYER_UPDATES_QUEUE, {"match_id": "m1", "attempt": 1}, "UnprocessableMessage"),
        (MATCHES_QUEUE, {"reason": "no match id"}, "UnprocessableMessage"),
        (PLAYER_UPDATES_QUEUE, {"match_id": "m1", "dead_letter": "boom"}, "PlayerStepFailed"),
    ],
)
async def test_the_worker_dead_letters_what_is_no_command_before_any_runner(
    queue: str, body: dict[str, Any], reason: str
) -> None:
    bus, runner = InMemoryMessageBus(), RecordingRunner()
    worker = Worker(bus, runner)
    await bus.publish(queue, BusMessage("bad", body))
    [received] = await bus.receive(queue, 1, 1.0)
    await worker.handle(queue, received)
    assert runner.handled == []
    assert worker.counters.dead_lettered == 1
    [dead] = await bus.receive(f"{queue}/$deadletterqueue", 1, 1.0)
    assert dead.message.body[DEAD_LETTER_REASON] == reason
    assert dead.message.body[DEAD_LETTER_DESCRIPTION]


async def test_the_worker_hands_a_command_to_the_runner() -> None:
    bus, runner = InMemoryMessageBus(), RecordingRunner()
    worker = Worker(bus, runner)
    await bus.publish(MATCHES_QUEUE, match_invalidated("m1", "cheating"))
    [received] = await bus.receive(MATCHES_QUEUE, 1, 1.0)
    await worker.handle(MATCHES_QUEUE, received)
    assert runner.handled == [VoidMatch("m1", "cheating")]
    assert worker.counters.completed == 1


class RecordingCoordinator:
    """Records which coordinator method a command reached, and with what."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        async def method(*args: Any) -> SagaState:
            self.calls.append((name, args))
            return SagaState.COMPLETED

        return method


RETRY = RetryPlayer("m1", "p1", 2, Action.APPLY)


@pytest.mark.parametrize(
    ("command", "call"),
    [
        (StartSaga("m1"), ("run", ("m1", None))),
        (ResumeSaga("m1"), ("resume", ("m1",))),
        (RETRY, ("retry", (RETRY,))),
        (VoidMatch("m1", "cheating"), ("invalidate", ("m1", "cheating"))),
        (RedriveSaga("m1"), ("redrive", ("m1",))),
    ],
    ids=lambda v: type(v).__name__,
)
async def test_each_command_reaches_its_own_coordinator_method(
    command: SagaCommand, call: tuple[str, tuple[Any, ...]]
) -> None:
    coordinator = RecordingCoordinator()
    assert await _dispatch(coordinator, command) is SagaState.COMPLETED  # type: ignore[arg-type]
    assert coordinator.calls == [call]


@pytest.mark.parametrize(
    "command",
    [StartSaga("m1"), ResumeSaga("m1"), RETRY, VoidMatch("m1", "x"), RedriveSaga("m1")],
    ids=lambda c: type(c).__name__,
)
def test_a_command_is_frozen_and_crosses_to_an_actor_by_pickle(command: SagaCommand) -> None:
    assert pickle.loads(pickle.dumps(command)) == command
    with pytest.raises(FrozenInstanceError):
        command.match_id = "m2"  # type: ignore[misc]
