"""The composition root: the only place that chooses adapters and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from actors.config import ActorConfig
from actors.grains import GrainSettings
from app.domain.errors import NotFound
from app.ports import MessageBus, SagaRunner
from app.services import StatsService
from app.settings import Settings
from app.worker import Worker

log = logging.getLogger(__name__)
READINESS_PROBE_ID = "readiness-probe"


def actor_config(settings: Settings) -> ActorConfig:
    """What the actors need to know, taken from the settings."""
    return ActorConfig(
        storage_connection_string=settings.storage_connection_string.get_secret_value(),
        storage_prefix=settings.storage_prefix,
        namespace=settings.ray_namespace,
        game_pool_size=settings.game_pool_size,
        player_pool_size=settings.player_pool_size,
        grains=GrainSettings(
            capacity=settings.shard_capacity, idle_ttl_s=settings.grain_idle_ttl_s
        ),
        retry_policy=settings.retry_policy,
    )


@dataclass
class Runtime:
    """Everything a running statsaga process holds."""

    settings: Settings
    service: StatsService
    worker: Worker
    runner: SagaRunner
    bus: MessageBus
    readiness: dict[str, Any] = field(default_factory=dict)
    _closers: list[Any] = field(default_factory=list)

    async def close(self) -> None:
        """Close clients (actors keep theirs: they belong to the pools)."""
        for close in reversed(self._closers):
            try:
                await close()
            except Exception:  # closing must go on for the others
                log.exception("error while closing")


async def build_runtime(settings: Settings, bus: MessageBus | None = None) -> Runtime:
    """Join (or start) Ray, make sure the pools exist, open storage, wire the services."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from actors.player_grains import RayPlayerGrains
    from actors.pools import GamePool, ensure_pools, init_ray
    from storage.memory_bus import InMemoryMessageBus
    from storage.tables import open_table_storage

    init_ray(settings.ray_address, settings.ray_namespace, settings.ray_num_cpus)
    await asyncio.to_thread(ensure_pools, actor_config(settings))
    storage = await open_table_storage(
        settings.storage_connection_string.get_secret_value(), settings.storage_prefix
    )
    bus = bus or InMemoryMessageBus()
    grains = RayPlayerGrains(settings.ray_namespace, settings.player_pool_size)
    runner = GamePool(settings.ray_namespace, settings.game_pool_size)
    service = StatsService(storage.sagas, storage.archive, storage.players, grains, bus)
    worker = Worker(bus, runner, settings.worker_concurrency)

    async def storage_ready() -> None:
        with contextlib.suppress(NotFound):  # the table answered: all readiness asks
            await storage.sagas.load(READINESS_PROBE_ID)

    readiness = {"storage": storage_ready, "ray": runner.ping}
    return Runtime(settings, service, worker, runner, bus, readiness, [storage.close, bus.close])
