"""``BoardActor``: the leaderboards of the modes it owns, in memory (``BoardHost``), and
``RayLeaderboards``, the ``Leaderboards`` port over the pool of them.

A mode belongs to the member ``owner(mode, size)`` (rendezvous hashing, as the other
pools): all four boards of a mode live on one actor, so a player's standing in a mode is
one call, and the modes spread over the actors. The pool has a fixed size for now
(``STATSAGA_BOARD_ACTORS``); it is not yet one of the directory's pools, so it is not
resized at run time (a changed setting needs the actors stopped first).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import Any

import ray
from ray.exceptions import RayError, RayTaskError

from actors.config import ActorConfig, configure_actor_logging, open_storage
from actors.once import BuiltOnce
from actors.routing import connected, while_restarting
from app.application.boards import BoardHost
from app.application.ports import BoardPage
from app.domain.errors import DomainError, PoolUnavailable
from app.domain.leaderboards import BoardUpdate, Standing
from app.domain.placement import group_by_owner, owner

log = logging.getLogger(__name__)


def board_actor_name(index: int) -> str:
    """Ray name of member ``index`` of the board pool."""
    return f"board-{index}"


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)
class BoardActor:
    """One member of the board pool. A restarted actor loses nothing durable: its first
    call loads the modes' snapshots and rebuilds them from the records in the background
    (``STATSAGA_BOARD_SNAPSHOT_INTERVAL_S`` bounds what a crash can lose meanwhile)."""

    def __init__(self, index: int, size: int, config: ActorConfig) -> None:
        configure_actor_logging(config, board_actor_name(index))
        self._index, self._size, self._config = index, size, config
        self._host = BuiltOnce(self._build_host)
        self._saver: asyncio.Task[None] | None = None
        self._calls = 0

    async def _build_host(self) -> BoardHost:
        storage = await open_storage(self._config)
        host = BoardHost(
            storage.boards,
            storage.players,
            self._config.board_snapshot_interval_s,
            owns=lambda mode: owner(mode, self._size) == self._index,
        )
        await host.start()
        self._saver = asyncio.get_running_loop().create_task(host.run())
        return host

    async def offer(self, updates: Sequence[BoardUpdate]) -> None:
        """Apply the players' new values to this actor's modes."""
        self._calls += 1
        await (await self._host.get()).offer(updates)

    async def page(
        self, mode: str, stat: str, limit: int, continuation: str | None = None
    ) -> BoardPage:
        """One page of one board."""
        self._calls += 1
        return await (await self._host.get()).page(mode, stat, limit, continuation)

    async def standing(self, mode: str, player_id: str) -> dict[str, Standing]:
        """A player's standing on the mode's boards."""
        self._calls += 1
        return await (await self._host.get()).standing(mode, player_id)

    async def rebuild(self) -> int:
        """Rebuild this actor's modes from the records now (operators); how many records
        were read. Waits for a rebuild already running instead of starting another."""
        host = await self._host.get()
        if host.rebuilding:
            await host.start_rebuild()
            return host.rebuilt_from
        return await host.rebuild()

    async def flush(self) -> int:
        """Save the changed modes now; how many were saved."""
        return await (await self._host.get()).flush()

    async def stats(self) -> dict[str, Any]:
        """This actor's modes, board sizes and counters."""
        host = await self._host.get()
        return {
            "index": self._index,
            "pid": os.getpid(),
            "calls_served": self._calls,
            **host.stats(),
        }

    async def ping(self) -> int:
        """Liveness probe (opens nothing)."""
        return self._index


def ensure_board_actors(config: ActorConfig) -> int:
    """Create the board pool's members (or find them); how many there are."""
    handles = [
        BoardActor.options(  # type: ignore[attr-defined]
            name=board_actor_name(i),
            namespace=config.namespace,
            lifetime="detached",
            get_if_exists=True,
            scheduling_strategy="SPREAD",  # as the other pools (see actors/directory.py)
            memory=1,
        ).remote(i, config.board_actors, config)
        for i in range(config.board_actors)
    ]
    ray.get([h.ping.remote() for h in handles])
    return len(handles)


class RayLeaderboards:
    """``Leaderboards`` over the board pool: each call goes to the mode's owner; offers
    are grouped by owner, one call per actor (see ``actors/board_feed.py`` for what
    makes sure none is lost)."""

    def __init__(self, namespace: str, size: int) -> None:
        self._namespace, self._size = namespace, size
        self._handles: dict[int, Any] = {}

    def _actor(self, index: int) -> Any:
        connected()
        handle = self._handles.get(index)
        if handle is None:
            try:
                handle = ray.get_actor(board_actor_name(index), namespace=self._namespace)
            except ValueError as exc:
                raise PoolUnavailable(f"no board actor {index}: has a worker started?") from exc
            self._handles[index] = handle
        return handle

    async def offer(self, updates: Sequence[BoardUpdate]) -> None:
        """Send each owner its updates, one call each, and wait until they have taken
        them; ``PoolUnavailable`` when one could not (the caller keeps them for later)."""
        by_mode: dict[str, list[BoardUpdate]] = {}
        for update in updates:
            by_mode.setdefault(update.mode, []).append(update)
        sends = [
            self._actor(index).offer.remote([u for mode in modes for u in by_mode[mode]])
            for index, modes in group_by_owner(by_mode, self._size).items()
        ]
        try:
            await asyncio.gather(*sends)
        except RayError as exc:
            self._handles.clear()  # a member that died for good is looked up again
            raise PoolUnavailable(f"a board actor did not take an offer: {exc}") from exc

    async def page(
        self, mode: str, stat: str, limit: int, continuation: str | None = None
    ) -> BoardPage:
        """One page of one board, from the mode's owner."""
        page: BoardPage = await self._call(
            mode, lambda actor: actor.page.remote(mode, stat, limit, continuation)
        )
        return page

    async def standing(self, mode: str, player_id: str) -> dict[str, Standing]:
        """A player's standing on the mode's boards, from the mode's owner."""
        found: dict[str, Standing] = await self._call(
            mode, lambda actor: actor.standing.remote(mode, player_id)
        )
        return found

    async def _call(self, mode: str, send: Any) -> Any:
        index = owner(mode, self._size)
        try:
            async for attempt in while_restarting(f"board actor {index}"):
                with attempt:
                    return await send(self._actor(index))
        except RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, DomainError | ValueError):
                raise cause from None  # the host's refusal (a bad token), not a failure
            raise PoolUnavailable(f"board actor {index} failed: {exc}") from exc
        except RayError as exc:
            self._handles.pop(index, None)
            raise PoolUnavailable(f"board actor {index} is unavailable: {exc}") from exc
        raise AssertionError("unreachable: the retries reraise")

    async def describe(self) -> list[dict[str, Any]]:
        """Each board actor's stats, for operators."""
        calls = [self._actor(i).stats.remote() for i in range(self._size)]
        try:
            return list(await asyncio.gather(*calls))
        except RayError as exc:
            raise PoolUnavailable(f"the board actors failed: {exc}") from exc
