"""Runs sagas in this process: the ``SagaRunner`` a GameActor wraps, and the one unit tests
use without Ray. Each command gets its own coordinator and outbox, handed back in the reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import assert_never

from app.application.commands import (
    RedriveSaga,
    ResumeSaga,
    RetryPlayer,
    SagaCommand,
    StartSaga,
    VoidMatch,
)
from app.application.outbox import OutboxBus
from app.application.ports import PayloadArchive, PlayerGrains, SagaLog, SagaReply
from app.application.sagas import SagaCoordinator
from app.domain.retry import RetryPolicy
from app.domain.saga import SagaState
from app.observability.logs import bind


@dataclass
class LocalSagaRunner:
    """``SagaRunner`` over the ports, in the calling process."""

    sagas: SagaLog
    archive: PayloadArchive
    grains: PlayerGrains
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    async def handle(self, command: SagaCommand) -> SagaReply:
        """Run ``command`` on a coordinator of its own; reply with the saga's state and
        the messages it asked for."""
        player_id = command.player_id if isinstance(command, RetryPlayer) else None
        # Everything logged while the saga runs, here or in the adapters, names the match.
        with bind(match_id=command.match_id, player_id=player_id):
            outbox = OutboxBus()
            coordinator = SagaCoordinator(
                self.sagas, self.archive, self.grains, outbox, self.policy
            )
            state = await _dispatch(coordinator, command)
            return SagaReply(state.value, tuple(outbox.sent), coordinator.finished)


async def _dispatch(coordinator: SagaCoordinator, command: SagaCommand) -> SagaState:
    """The coordinator method of each command (mypy names a command left out)."""
    match command:
        case StartSaga(match_id, start):
            return await coordinator.run(match_id, start)
        case ResumeSaga(match_id):
            return await coordinator.resume(match_id)
        case RetryPlayer():
            return await coordinator.retry(command)
        case VoidMatch(match_id, reason):
            return await coordinator.invalidate(match_id, reason)
        case RedriveSaga(match_id):
            return await coordinator.redrive(match_id)
    assert_never(command)
