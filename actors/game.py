"""``GameActor``: the saga execution coordinator, one of a pool keyed by match id."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import ray

from actors.chaos import ActorKiller, DyingGrains
from actors.config import ActorConfig, open_storage
from actors.player_grains import RayPlayerGrains
from app.ports import PlayerGrains, SagaReply
from app.runner import LocalSagaRunner

if TYPE_CHECKING:
    from storage.tables import TableStorage


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)
class GameActor:
    """Runs many match sagas concurrently (an async actor); all state is in the saga log,
    so a restarted actor has nothing to recover but its storage clients."""

    def __init__(self, index: int, config: ActorConfig) -> None:
        self._index = index
        self._config = config
        self._runner: LocalSagaRunner | None = None
        self._starting: asyncio.Lock | None = None
        self._storage: TableStorage | None = None

    async def _ready(self) -> LocalSagaRunner:
        # Clients bind to the actor's event loop, which exists only once a method runs.
        if self._runner is None:
            self._starting = self._starting or asyncio.Lock()
            async with self._starting:
                if self._runner is None:
                    self._storage = storage = await open_storage(self._config)
                    grains: PlayerGrains = RayPlayerGrains(
                        self._config.namespace, self._config.player_pool_size
                    )
                    if self._config.faults.actor_kill > 0:
                        killer = ActorKiller(self._config.faults.actor_kill, f"game {self._index}")
                        grains = DyingGrains(grains, killer)
                    self._runner = LocalSagaRunner(
                        storage.sagas, storage.archive, grains, self._config.retry_policy
                    )
        return self._runner

    async def run(self, match_id: str) -> SagaReply:
        """Start or resume the saga of ``match_id``."""
        return await (await self._ready()).run(match_id)

    async def resume(self, match_id: str) -> SagaReply:
        """Move a stalled saga on."""
        return await (await self._ready()).resume(match_id)

    async def retry(self, body: Mapping[str, Any]) -> SagaReply:
        """Run one scheduled player retry."""
        return await (await self._ready()).retry(body)

    async def invalidate(self, match_id: str, reason: str) -> SagaReply:
        """Compensate the match (backward recovery)."""
        return await (await self._ready()).invalidate(match_id, reason)

    async def redrive(self, match_id: str) -> SagaReply:
        """Retry the dead players of a stuck saga."""
        return await (await self._ready()).redrive(match_id)

    async def ping(self) -> int:
        """Liveness probe."""
        return self._index
