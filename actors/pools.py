"""The actor pools as the rest of statsaga sees them: joining Ray, creating the pools
through their directory, the GameActor pool as a ``SagaRunner``, and the operators'
``PoolAdmin``. Pools are named, detached actors in one namespace, shared by every api and
worker process of the deployment."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import ray
from ray.exceptions import RayError
from ray.util import list_named_actors

from actors.config import DIRECTORY_NAME, ActorConfig
from actors.directory import PoolDirectory
from actors.routing import (
    MemberGone,
    PlacementCache,
    PoolRouter,
    pool_directory,
    while_restarting,
)
from app.application.commands import SagaCommand
from app.application.ports import SagaReply
from app.domain.errors import PoolUnavailable
from app.domain.placement import Placement, PoolName
from app.observability.logs import adopt_loggers

log = logging.getLogger(__name__)


def init_ray(
    address: str | None, namespace: str, num_cpus: int | None = None, temp_dir: str | None = None
) -> None:
    """Join the cluster at ``address``, or start an embedded Ray when it is ``None``."""
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"namespace": namespace, "log_to_driver": True}
    if address:
        _check_reachable(address)
        kwargs["address"] = address
    else:
        kwargs.update(include_dashboard=False, num_cpus=num_cpus)
        if temp_dir:
            kwargs["_temp_dir"] = temp_dir
    # Ray's logger got a handler of its own when ray was imported: ours format it too.
    adopt_loggers("ray")
    ray.init(**kwargs)


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a head that does not answer: ``ray.init`` waits for it indefinitely."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return  # "auto", "ray://…": Ray resolves those itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(f"no Ray head answers at {address}: {exc}") from exc


def ensure_pools(config: ActorConfig) -> Placement:
    """Create the directory and, through it, the pools' members (or find them, if another
    process did); returns the placement in force."""
    directory = PoolDirectory.options(  # type: ignore[attr-defined]
        name=DIRECTORY_NAME, namespace=config.namespace, lifetime="detached", get_if_exists=True
    ).remote(config)
    placement: Placement = ray.get(
        directory.ensure.remote(config.game_pool_size, config.player_pool_size, config.board_actors)
    )
    return placement


def kill_pools(namespace: str) -> int:
    """Stop the directory and every member of the pools (detached actors outlive their
    creator otherwise); returns how many actors were stopped. The namespace is the
    deployment's: every named actor in it belongs to the pools."""
    stopped = 0
    for actor in list_named_actors(all_namespaces=True):
        if actor.get("namespace") == namespace:
            with contextlib.suppress(ValueError):  # gone meanwhile: nothing to stop
                ray.kill(ray.get_actor(actor["name"], namespace=namespace), no_restart=True)
                stopped += 1
    return stopped


class GamePool:
    """Routes each saga to the GameActor that owns its match id."""

    def __init__(self, placements: PlacementCache) -> None:
        self._router = PoolRouter("game", placements)

    async def handle(self, command: SagaCommand) -> SagaReply:
        """Run ``command`` on the GameActor that owns its match."""
        reply: SagaReply = await self._router.call_for(
            command.match_id, lambda game, placement: game.handle.remote(command, placement)
        )
        return reply

    async def ping(self) -> bool:
        """True when every GameActor answers. A member gone since this process last
        looked (the pool shrank) is no reason to be unready: look again, then judge."""
        placements = self._router.placements
        try:
            await self._ping_all(await placements.get())
        except MemberGone:
            await self._ping_all(await placements.refresh())
        return True

    async def _ping_all(self, placement: Placement) -> None:
        pings = (
            self._router.call(i, lambda game: game.ping.remote()) for i in range(placement.game)
        )
        await asyncio.gather(*pings)


class RayPoolAdmin:
    """``PoolAdmin`` through the pool directory."""

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace

    async def describe(self) -> dict[str, Any]:
        """Sizes, version, and each member's node and counters."""
        try:
            directory = pool_directory(self._namespace)
            async for attempt in while_restarting("the pool directory"):
                with attempt:
                    described: dict[str, Any] = await directory.describe.remote()
            return described
        except RayError as exc:
            raise PoolUnavailable(f"the pool directory failed: {exc}") from exc

    async def resize(self, pool: PoolName, size: int) -> dict[str, Any]:
        """Resize ``pool`` and describe the result."""
        try:
            # Not retried: a resize cut off by the directory's death may have been done;
            # the operator looks (GET) and asks again (resizing to the same size is a no-op).
            await pool_directory(self._namespace).resize.remote(pool, size)
        except RayError as exc:
            raise PoolUnavailable(f"resizing the {pool} pool failed: {exc}") from exc
        return await self.describe()
