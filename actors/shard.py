"""``PlayerShard``: a Ray actor hosting many virtual player grains (see ``grains.py``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ray

from actors.chaos import ActorKiller
from actors.config import ActorConfig, open_storage
from actors.grains import PlayerGrainHost
from app.domain.stats import ServiceRecord
from app.ports import PlayerUpdate, UpdateResult

if TYPE_CHECKING:
    from storage.tables import TableStorage

IDLE_SWEEP_S = 30.0


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)
class PlayerShard:
    """One shard of the player pool; its storage client lives in this actor's process."""

    def __init__(self, index: int, config: ActorConfig) -> None:
        self._index = index
        self._config = config
        self._host: PlayerGrainHost | None = None
        self._starting: asyncio.Lock | None = None
        self._storage: TableStorage | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._killer = ActorKiller(config.faults.actor_kill, f"player shard {index}")

    async def _ready(self) -> PlayerGrainHost:
        # Clients bind to the actor's event loop, which exists only once a method runs.
        if self._host is None:
            self._starting = self._starting or asyncio.Lock()
            async with self._starting:
                if self._host is None:
                    self._storage = storage = await open_storage(self._config)
                    self._host = PlayerGrainHost(storage.players, self._config.grains)
                    self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        return self._host

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(IDLE_SWEEP_S)
            if self._host is not None:
                with contextlib.suppress(Exception):
                    self._host.collect_idle()

    async def update(self, updates: Sequence[PlayerUpdate]) -> list[UpdateResult]:
        """Apply or compensate matches for players of this shard."""
        results = await (await self._ready()).update(updates)
        self._killer.maybe_die(f"after updating {len(updates)} players, before answering")
        return results

    async def service_record(self, player_id: str) -> ServiceRecord:
        """A player's record, from its activation."""
        return await (await self._ready()).service_record(player_id)

    async def deactivate(self, player_ids: Sequence[str] | None = None) -> int:
        """Drop activations (all when ``None``); they reload from storage on next use."""
        return (await self._ready()).deactivate(player_ids)

    async def stats(self) -> dict[str, Any]:
        """Counters of this shard."""
        return {"index": self._index, **(await self._ready()).stats()}
