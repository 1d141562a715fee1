"""The actor pools: named, detached Ray actors in one namespace, shared by every process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import ray
from ray.exceptions import RayError

from actors.config import ActorConfig, game_name, shard_name
from actors.game import GameActor
from actors.placement import owner
from actors.shard import PlayerShard
from app.ports import SagaReply

log = logging.getLogger(__name__)


def init_ray(
    address: str | None, namespace: str, num_cpus: int | None = None, temp_dir: str | None = None
) -> None:
    """Join the cluster at ``address``, or start an embedded Ray when it is ``None``."""
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"namespace": namespace, "log_to_driver": True}
    if address:
        kwargs["address"] = address
    else:
        kwargs.update(include_dashboard=False, num_cpus=num_cpus)
        if temp_dir:
            kwargs["_temp_dir"] = temp_dir
    ray.init(**kwargs)


def ensure_pools(config: ActorConfig) -> None:
    """Create the pools' actors, or find them if another process already did."""
    options = {"namespace": config.namespace, "lifetime": "detached", "get_if_exists": True}
    shards = [
        PlayerShard.options(name=shard_name(i), **options).remote(i, config)  # type: ignore[attr-defined]
        for i in range(config.player_pool_size)
    ]
    games = [
        GameActor.options(name=game_name(i), **options).remote(i, config)  # type: ignore[attr-defined]
        for i in range(config.game_pool_size)
    ]
    # Wait until each answers, so that the first match does not pay for actor start-up.
    # A warm-up that fails (storage briefly down) is not fatal: actors open storage on
    # first use again, and a saga that meets the failure retries.
    try:
        ray.get([s.stats.remote() for s in shards] + [g.ping.remote() for g in games])
    except RayError as exc:
        log.warning("warming up the pools failed (%s); they start cold", exc)


def kill_pools(config: ActorConfig) -> None:
    """Stop every actor of the pools (detached actors outlive their creator otherwise)."""
    names = [shard_name(i) for i in range(config.player_pool_size)]
    names += [game_name(i) for i in range(config.game_pool_size)]
    for name in names:
        with contextlib.suppress(ValueError):  # not there: nothing to stop
            ray.kill(ray.get_actor(name, namespace=config.namespace), no_restart=True)


class GamePool:
    """Routes each saga to the GameActor that owns its match id."""

    def __init__(self, namespace: str, size: int) -> None:
        self._namespace = namespace
        self._size = size
        self._handles: dict[int, Any] = {}

    def _actor(self, index: int) -> Any:
        if index not in self._handles:
            self._handles[index] = ray.get_actor(game_name(index), namespace=self._namespace)
        return self._handles[index]

    async def _call(self, match_id: str, method: str, *args: Any) -> SagaReply:
        index = owner(match_id, self._size)
        actor = self._actor(index)
        try:
            reply: SagaReply = await getattr(actor, method).remote(*args)
            return reply
        except RayError:
            self._handles.pop(index, None)
            raise

    async def run(self, match_id: str) -> SagaReply:
        """Start or resume a saga."""
        return await self._call(match_id, "run", match_id)

    async def resume(self, match_id: str) -> SagaReply:
        """Move a stalled saga on."""
        return await self._call(match_id, "resume", match_id)

    async def retry(self, body: Mapping[str, Any]) -> SagaReply:
        """Run one player retry."""
        return await self._call(str(body.get("match_id", "")), "retry", body)

    async def invalidate(self, match_id: str, reason: str) -> SagaReply:
        """Compensate a match."""
        return await self._call(match_id, "invalidate", match_id, reason)

    async def redrive(self, match_id: str) -> SagaReply:
        """Re-drive a stuck saga."""
        return await self._call(match_id, "redrive", match_id)

    async def ping(self) -> bool:
        """True when every GameActor answers."""
        await asyncio.gather(*(self._actor(i).ping.remote() for i in range(self._size)))
        return True
