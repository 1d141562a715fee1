"""``PoolDirectory``: the one actor that starts, resizes and stops the pools' members, and
the source of the placement every process routes by.

Its placement is durable (``PlacementStore``): a restarted directory, or a new worker
joining the cluster, goes on with the sizes in force. The deployment's configured sizes
win only when they changed since they were last applied (a new setting is a decision; an
unchanged one must not undo an operator's resize at every restart).

A resize, one at a time:
1. growing: start the new members (with the current placement: they learn the new one
   like everyone else, so a resize that fails half-way leaves nothing inconsistent);
2. save the new placement (from here on, a process that asks gets it);
3. push it to every member: grains of players that moved are deactivated after their
   current turn, and a caller still on the old placement is answered ``Moved``;
4. shrinking: wait for the surplus members' calls to finish, then stop them.
No update is lost or doubled meanwhile: two shards that briefly serve the same player
write under the same etag guard and per-match markers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import ray
from ray.util import list_named_actors

from actors.boards import BoardActor
from actors.config import (
    DIRECTORY_NAME,
    ActorConfig,
    configure_actor_logging,
    member_name,
    open_storage,
)
from actors.game import GameActor
from actors.shard import PlayerShard
from app.application.ports import StoredPlacement
from app.domain.placement import POOLS, Placement, PoolName

if TYPE_CHECKING:
    from storage.tables import TableStorage

log = logging.getLogger(__name__)
DRAIN_S = 30.0  # longest wait for a surplus member's calls before it is stopped anyway
STATS_TIMEOUT_S = 5.0
_ACTORS = {"game": GameActor, "player": PlayerShard, "board": BoardActor}


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)
class PoolDirectory:
    """Pool sizes, placement version, and the members' lifecycle."""

    def __init__(self, config: ActorConfig) -> None:
        configure_actor_logging(config, DIRECTORY_NAME)
        self._config = config
        self._lock: asyncio.Lock | None = None
        self._storage: TableStorage | None = None
        self._stored: StoredPlacement | None = None
        self._upgraded = False  # _stored was read from a row without a board size
        self._last_resize: dict[str, Any] | None = None

    # ---- what callers ask ----------------------------------------------------------------

    async def ensure(self, game: int, player: int, board: int) -> Placement:
        """Reconcile with the deployment's configured sizes, start any missing member,
        and return the placement in force (what every worker calls at start)."""
        sizes: dict[PoolName, int] = {"game": game, "player": player, "board": board}
        async with self._locked():
            stored = await self._load()
            if stored is None:
                await self._save(Placement(1, game, player, board), sizes)
            else:
                if self._upgraded:  # saved as read, so that it no longer depends on a config
                    await self._save(stored.placement, _configured_sizes(stored))
                    self._upgraded = False
                for pool in POOLS:
                    configured = stored.configured(pool)
                    if configured != sizes[pool]:
                        log.info(
                            "%s pool: its setting changed %s → %d", pool, configured, sizes[pool]
                        )
                        await self._resize(pool, sizes[pool], configured=sizes[pool])
            placement = await self.placement()
            for pool_name in POOLS:
                await self._start(pool_name, range(placement.size(pool_name)), placement)
                # Members beyond the size: left by a resize cut off half-way.
                await self._stop(pool_name, self._surplus(pool_name, placement.size(pool_name)))
            return placement

    async def placement(self) -> Placement:
        """The placement in force."""
        stored = await self._load()
        if stored is None:
            raise ValueError("the pools are not created yet (no worker has started)")
        return stored.placement

    async def resize(self, pool: PoolName, size: int) -> Placement:
        """Resize ``pool`` to ``size`` members (see the module's docstring)."""
        async with self._locked():
            return await self._resize(pool, size)

    async def describe(self) -> dict[str, Any]:
        """Sizes, version, and each member's counters (``error`` for one that does not
        answer within a few seconds)."""
        stored = await self._load()
        if stored is None:
            raise ValueError("the pools are not created yet (no worker has started)")
        placement = stored.placement
        pools: dict[str, Any] = {}
        for pool in POOLS:
            members = await asyncio.gather(
                *(self._member_stats(pool, i) for i in range(placement.size(pool)))
            )
            pools[pool] = {"size": placement.size(pool), "members": list(members)}
        return {
            "version": placement.version,
            "updated_at": stored.updated_at.isoformat(),
            "configured": _configured_sizes(stored),
            "pools": pools,
            "last_resize": self._last_resize,
        }

    # ---- resizing ------------------------------------------------------------------------

    async def _resize(self, pool: PoolName, size: int, configured: int | None = None) -> Placement:
        stored = await self._load()
        if stored is None:
            raise ValueError("the pools are not created yet (no worker has started)")
        current = stored.placement
        old = current.size(pool)
        new = current.resized(pool, size) if size != old else current
        started = time.monotonic()
        if size > old:
            await self._start(pool, range(old, size), current)
        sizes = _configured_sizes(stored)
        if configured is not None:
            sizes[pool] = configured
        await self._save(new, sizes)
        await self._push(new, {pool: max(old, size)})
        drained = await self._stop(pool, self._surplus(pool, size))
        self._last_resize = {
            "pool": pool,
            "from": old,
            "to": size,
            "version": new.version,
            "drained": drained,
            "seconds": round(time.monotonic() - started, 3),
            "at": datetime.now(UTC).isoformat(),
        }
        log.info("resized the %s pool: %s", pool, self._last_resize)
        return new

    async def _start(self, pool: PoolName, indexes: range, placement: Placement) -> None:
        """Start (or find) members and wait until each answers."""
        actor = _ACTORS[pool]
        handles = [
            actor.options(  # type: ignore[attr-defined]
                name=member_name(pool, i),
                namespace=self._config.namespace,
                lifetime="detached",
                get_if_exists=True,
                # Over every node of the cluster, not packed on the one that asked. An
                # actor that asks for no resource at all is placed at random, SPREAD or
                # not (measured with Ray 2.60): one byte of memory makes SPREAD exact.
                scheduling_strategy="SPREAD",
                memory=1,
            ).remote(i, self._config, placement)
            for i in indexes
        ]
        await asyncio.gather(*(h.ping.remote() for h in handles))

    async def _push(self, placement: Placement, spans: dict[PoolName, int]) -> None:
        """Tell every member, including a shrinking pool's surplus ones (``spans``); a
        member that misses it learns it from its next caller."""
        calls = []
        for pool in POOLS:
            for i in range(max(placement.size(pool), spans.get(pool, 0))):
                handle = self._find(pool, i)
                if handle is not None:
                    calls.append(handle.adopt.remote(placement))
        results = await asyncio.gather(*calls, return_exceptions=True)
        missed = sum(1 for r in results if isinstance(r, BaseException))
        if missed:
            log.warning("placement v%d: %d members did not take it now", placement.version, missed)

    def _surplus(self, pool: PoolName, size: int) -> list[int]:
        """Indexes of the running members of ``pool`` beyond ``size``."""
        names = {
            a["name"]
            for a in list_named_actors(all_namespaces=True)
            if a.get("namespace") == self._config.namespace
        }
        prefix = member_name(pool, 0)[:-1]
        indexes = [n.removeprefix(prefix) for n in names if n.startswith(prefix)]
        return sorted(int(i) for i in indexes if i.isdigit() and int(i) >= size)

    async def _stop(self, pool: PoolName, indexes: list[int]) -> bool:
        """Drain, then stop, surplus members; False when one was stopped undrained."""
        handles = [(i, h) for i in indexes if (h := self._find(pool, i)) is not None]
        drained = await asyncio.gather(
            *(h.drain.remote(DRAIN_S) for _, h in handles), return_exceptions=True
        )
        for (i, handle), ok in zip(handles, drained, strict=True):
            if ok is not True:
                log.warning("%s member %d stopped before its calls finished (%s)", pool, i, ok)
            ray.kill(handle, no_restart=True)
        # Wait until the names are free, so that growing again right away starts new ones.
        for i, _ in handles:
            for _ in range(100):  # the GCS frees a name within a second or so
                if self._find(pool, i) is None:
                    break
                await asyncio.sleep(0.1)
        return all(ok is True for ok in drained)

    # ---- helpers -------------------------------------------------------------------------

    def _find(self, pool: PoolName, index: int) -> Any:
        with contextlib.suppress(ValueError):
            return ray.get_actor(member_name(pool, index), namespace=self._config.namespace)
        return None

    async def _member_stats(self, pool: PoolName, index: int) -> dict[str, Any]:
        handle = self._find(pool, index)
        if handle is None:
            return {"index": index, "error": "not running"}
        try:
            stats: dict[str, Any] = await asyncio.wait_for(handle.stats.remote(), STATS_TIMEOUT_S)
            return stats
        except Exception as exc:  # shown to the operator, not raised
            return {"index": index, "error": f"{type(exc).__name__}: {exc}"[:300]}

    @contextlib.asynccontextmanager
    async def _locked(self) -> Any:
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            yield

    async def _load(self) -> StoredPlacement | None:
        if self._stored is None:
            if self._storage is None:
                self._storage = await open_storage(self._config)
            loaded = await self._storage.placements.load()
            # Stored by a version whose board pool was fixed: it ran the configured size.
            self._upgraded = loaded is not None and loaded.configured_board is None
            self._stored = loaded and loaded.with_board(self._config.board_actors)
        return self._stored

    async def _save(self, placement: Placement, configured: dict[PoolName, int]) -> None:
        assert self._storage is not None  # _load ran first
        stored = StoredPlacement(
            placement,
            configured["game"],
            configured["player"],
            datetime.now(UTC),
            configured_board=configured["board"],
        )
        await self._storage.placements.save(stored)
        self._stored = stored


def _configured_sizes(stored: StoredPlacement) -> dict[PoolName, int]:
    """The configured sizes ``stored`` was reconciled with (after ``with_board``)."""
    return {pool: stored.configured(pool) or stored.placement.size(pool) for pool in POOLS}
