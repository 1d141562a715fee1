"""The composition root: the only place that chooses adapters and wires them together.

Two roles, which one process may also run together (``statsaga run``):
- **api**: validate, store, publish; serve reads through the player grains. It needs
  storage and the bus; Ray only for reads, so it keeps answering POSTs while Ray or the
  worker is down (the matches wait in the queue).
- **worker**: consume the queues and run sagas on the GameActor pool. It creates the
  actor pools if they do not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from actors.config import ActorConfig
from actors.grains import GrainSettings
from app.application.operations import Operations, StallSweeper
from app.application.outbox import OutboxSweeper
from app.application.ports import Leaderboards, MessageBus, PoolAdmin, QueueStats
from app.application.services import StatsService
from app.application.worker import Worker
from app.domain.errors import NotFound, TransientError
from app.observability.metrics import Metrics
from app.settings import Settings

if TYPE_CHECKING:
    from actors.routing import PlacementCache
    from storage.tables import TableStorage

log = logging.getLogger(__name__)
READINESS_PROBE_ID = "readiness-probe"
STORAGE_OPEN_ATTEMPTS = 10
Check = Callable[[], Awaitable[object]]


def actor_config(settings: Settings) -> ActorConfig:
    """What the actors need to know, taken from the settings."""
    return ActorConfig(
        storage_connection_string=settings.storage_connection_string.get_secret_value(),
        storage_prefix=settings.storage_prefix,
        namespace=settings.ray_namespace,
        game_pool_size=settings.game_pool_size,
        player_pool_size=settings.player_pool_size,
        board_actors=settings.board_actors,
        board_snapshot_interval_s=settings.board_snapshot_interval_s,
        grains=GrainSettings(
            capacity=settings.shard_capacity,
            idle_ttl_s=settings.grain_idle_ttl_s,
            blind_insert=settings.grain_blind_insert,
        ),
        retry_policy=settings.retry_policy,
        faults=settings.fault_plan,
        sdk_retries=settings.storage_sdk_retries,
        log_level=settings.log_level,
        log_format=settings.log_format,
    )


def open_bus(settings: Settings) -> MessageBus:
    """The Service Bus adapter on the configured namespace (the local broker by default)."""
    from storage.servicebus_bus import ServiceBusMessageBus

    return ServiceBusMessageBus(
        settings.servicebus_connection_string.get_secret_value(),
        max_lock_renewal_s=settings.lock_renewal_s,
        lost_settlement=settings.fault_plan.lost_settlement,
    )


def open_queue_stats(settings: Settings) -> QueueStats:
    """Queue depths through the administration API of the configured namespace (Azure, an
    emulator's port 5300, or the local broker's)."""
    from storage.servicebus_stats import ServiceBusQueueStats

    return ServiceBusQueueStats(settings.servicebus_admin.get_secret_value())


@dataclass
class Runtime:
    """What a running statsaga process holds; ``service`` for the api role, ``worker``
    for the worker role (both for ``statsaga run``); ``metrics`` for whichever runs."""

    settings: Settings
    bus: MessageBus
    metrics: Metrics = field(default_factory=Metrics)
    service: StatsService | None = None
    operations: Operations | None = None
    pools: PoolAdmin | None = None
    boards: Leaderboards | None = None
    queue_stats: QueueStats | None = None
    worker: Worker | None = None
    sweepers: list[OutboxSweeper | StallSweeper] = field(default_factory=list)
    readiness: dict[str, Check] = field(default_factory=dict)
    _closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    async def close(self) -> None:
        """Close clients (actors keep theirs: they belong to the pools)."""
        for close in reversed(self._closers):
            try:
                await close()
            except Exception:  # closing must go on for the others
                log.exception("error while closing")


async def join_ray(settings: Settings, create_pools: bool) -> None:
    """Join (or, without an address, start) Ray; the worker also creates the pools."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from actors.pools import ensure_pools, init_ray

    # In a thread: joining an unreachable cluster blocks, and the API must keep serving.
    await asyncio.to_thread(
        init_ray, settings.ray_address, settings.ray_namespace, settings.ray_num_cpus
    )
    if create_pools:
        # The directory reads its placement from storage, which may be briefly down.
        async for attempt in AsyncRetrying(
            wait=wait_exponential_jitter(multiplier=0.5, max=5.0, jitter=0.5),
            stop=stop_after_attempt(STORAGE_OPEN_ATTEMPTS),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "creating the pools failed (%s); retrying",
                state.outcome and state.outcome.exception(),
            ),
        ):
            with attempt:
                placement = await asyncio.to_thread(ensure_pools, actor_config(settings))
        log.info(
            "pools: %d GameActors, %d PlayerShards, %d BoardActors (placement v%d)",
            placement.game,
            placement.player,
            placement.board,
            placement.version,
        )


async def build_runtime(
    settings: Settings,
    *,
    api: bool = True,
    worker: bool = True,
    bus: MessageBus | None = None,
    queue_stats: QueueStats | None = None,
    metrics: Metrics | None = None,
) -> Runtime:
    """Open storage and the bus, and wire the services of the chosen roles (and their
    metrics, into ``metrics`` when given)."""
    from actors.pools import GamePool
    from actors.routing import PlacementCache

    storage = await _open_storage(settings)
    bus = bus or open_bus(settings)
    metrics = metrics or Metrics(api=api, worker=worker)
    runtime = Runtime(settings, bus, metrics=metrics, _closers=[storage.close, bus.close])

    async def storage_ready() -> None:
        with contextlib.suppress(NotFound):  # the table answered: all readiness asks
            await storage.sagas.load(READINESS_PROBE_ID)

    runtime.readiness["storage"] = storage_ready
    # One placement per process: what the worker learns of a resize, reads route by too.
    placements = PlacementCache(settings.ray_namespace)
    runner = GamePool(placements)
    if api:
        _wire_api(runtime, storage, placements, queue_stats)
    if worker:
        runtime.worker = Worker(bus, runner, settings.worker_concurrency, observer=metrics.worker)
        runtime.readiness["ray"] = runner.ping
    if api:  # the deployment's views: every api process serves them
        metrics.views.watch(storage.sagas, runtime.pools, runtime.queue_stats)
    return runtime


async def _open_storage(settings: Settings) -> TableStorage:
    """Open the tables; storage that is briefly unavailable at start must not stop the
    process (``STORAGE_OPEN_ATTEMPTS`` tries with back-off)."""
    from storage.tables import open_table_storage

    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(TransientError),
        wait=wait_exponential_jitter(multiplier=0.2, max=5.0, jitter=0.2),
        stop=stop_after_attempt(STORAGE_OPEN_ATTEMPTS),
        reraise=True,
        before_sleep=lambda state: log.warning(
            "opening storage failed (%s); retrying", state.outcome and state.outcome.exception()
        ),
    ):
        with attempt:
            return await open_table_storage(
                settings.storage_connection_string.get_secret_value(),
                settings.storage_prefix,
                settings.fault_plan,
                settings.storage_sdk_retries,
            )
    raise AssertionError("unreachable: tenacity reraises")


def _wire_api(
    runtime: Runtime,
    storage: TableStorage,
    placements: PlacementCache,
    queue_stats: QueueStats | None,
) -> None:
    """The api role's services: ingest and reads, operations, pool admin, queue stats and
    the sweepers (every api process runs them: they are idempotent)."""
    from actors.leaderboards import RayLeaderboards
    from actors.player_grains import RayPlayerGrains
    from actors.pools import RayPoolAdmin

    settings, bus = runtime.settings, runtime.bus
    grains = RayPlayerGrains(placements)
    runtime.boards = RayLeaderboards(placements)
    runtime.service = StatsService(
        storage.sagas,
        storage.archive,
        storage.players,
        grains,
        bus,
        retry=settings.ingest_retry,
        boards=runtime.boards,
    )
    runtime.operations = Operations(storage.sagas, bus)
    runtime.pools = RayPoolAdmin(settings.ray_namespace)
    runtime.queue_stats = queue_stats or open_queue_stats(settings)
    runtime._closers.append(runtime.queue_stats.close)
    runtime.sweepers = [
        OutboxSweeper(storage.sagas, bus, settings.outbox_interval_s, settings.outbox_grace_s),
        StallSweeper(storage.sagas, bus, settings.stall_after_s, settings.stall_interval_s),
    ]
