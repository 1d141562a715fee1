"""Runs sagas in this process: the ``SagaRunner`` a GameActor wraps, and the one unit tests
use without Ray. Each call gets its own outbox, handed back in the reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.domain.retry import RetryPolicy
from app.domain.saga import SagaState
from app.logs import bind
from app.messages import PlayerRetry
from app.outbox import OutboxBus
from app.ports import CarriedStart, PayloadArchive, PlayerGrains, SagaLog, SagaReply
from app.sagas import SagaCoordinator


@dataclass
class LocalSagaRunner:
    """``SagaRunner`` over the ports, in the calling process."""

    sagas: SagaLog
    archive: PayloadArchive
    grains: PlayerGrains
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    async def _call(
        self,
        work: Callable[[SagaCoordinator], Awaitable[SagaState]],
        match_id: str,
        player_id: str | None = None,
    ) -> SagaReply:
        # Everything logged while the saga runs, here or in the adapters, names the match.
        with bind(match_id=match_id, player_id=player_id):
            outbox = OutboxBus()
            coordinator = SagaCoordinator(
                self.sagas, self.archive, self.grains, outbox, self.policy
            )
            state = await work(coordinator)
            return SagaReply(state.value, tuple(outbox.sent), coordinator.finished)

    async def run(self, match_id: str, start: CarriedStart | None = None) -> SagaReply:
        """Start or resume a saga (``start``: what its message carried, first delivery)."""
        return await self._call(lambda c: c.run(match_id, start), match_id)

    async def resume(self, match_id: str) -> SagaReply:
        """Move a stalled saga on, retrying overdue players now."""
        return await self._call(lambda c: c.resume(match_id), match_id)

    async def retry(self, body: Mapping[str, Any]) -> SagaReply:
        """Run one player retry."""
        retry = PlayerRetry.from_body(body)
        return await self._call(lambda c: c.retry(retry), retry.match_id, retry.player_id)

    async def invalidate(self, match_id: str, reason: str) -> SagaReply:
        """Compensate a match."""
        return await self._call(lambda c: c.invalidate(match_id, reason), match_id)

    async def redrive(self, match_id: str) -> SagaReply:
        """Re-drive a stuck saga."""
        return await self._call(lambda c: c.redrive(match_id), match_id)
