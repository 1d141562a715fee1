"""``PlayerGrains`` over the Ray shard pool: routes each player to its shard by rendezvous
hashing and turns a dead or unreachable shard into transient per-player failures."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import ray
from ray.exceptions import RayError

from actors.config import shard_name
from actors.placement import owner
from app.domain.errors import StorageUnavailable
from app.domain.stats import ServiceRecord
from app.ports import PlayerUpdate, UpdateResult


class RayPlayerGrains:
    """The player grains as every process (API, worker, GameActor) reaches them."""

    def __init__(self, namespace: str, pool_size: int) -> None:
        self._namespace = namespace
        self._size = pool_size
        self._handles: dict[int, Any] = {}

    def _shard(self, index: int) -> Any:
        handle = self._handles.get(index)
        if handle is None:
            if not ray.is_initialized():  # an api process that has not joined Ray yet
                raise ValueError("not connected to the Ray cluster")
            handle = ray.get_actor(shard_name(index), namespace=self._namespace)
            self._handles[index] = handle
        return handle

    async def update(self, updates: Sequence[PlayerUpdate]) -> list[UpdateResult]:
        """One call per shard, all shards at once."""
        groups: dict[int, list[PlayerUpdate]] = {}
        for u in updates:
            groups.setdefault(owner(u.delta.player_id, self._size), []).append(u)
        batches = await asyncio.gather(*(self._call(i, batch) for i, batch in groups.items()))
        results = {(r.player_id, r.match_id): r for batch in batches for r in batch}
        return [results[(u.delta.player_id, u.delta.match_id)] for u in updates]

    async def _call(self, index: int, batch: list[PlayerUpdate]) -> list[UpdateResult]:
        try:
            results: list[UpdateResult] = await self._shard(index).update.remote(batch)
            return results
        except (RayError, ValueError) as exc:
            # The shard died or restarts: whether the call ran is unknown, and that is fine
            # because every player step is idempotent. The saga retries it.
            self._handles.pop(index, None)
            error = f"shard {index} unavailable: {type(exc).__name__}"
            return [
                UpdateResult(u.delta.player_id, u.delta.match_id, False, error=error) for u in batch
            ]

    async def service_record(self, player_id: str) -> ServiceRecord:
        """Read through the player's grain; a shard that is down is ``StorageUnavailable``."""
        index = owner(player_id, self._size)
        try:
            record: ServiceRecord = await self._shard(index).service_record.remote(player_id)
            return record
        except (RayError, ValueError) as exc:
            self._handles.pop(index, None)
            raise StorageUnavailable(f"player shard {index} unavailable: {exc}") from exc
