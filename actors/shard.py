"""``PlayerShard``: a Ray actor hosting many virtual player grains (see ``grains.py``), one
member of the player pool (see ``membership.py``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ray

from actors.chaos import ActorKiller
from actors.config import ActorConfig, configure_actor_logging, member_name, open_storage
from actors.grains import PlayerGrainHost, match_of
from actors.leaderboards import RayLeaderboards
from actors.membership import Membership
from actors.once import BuiltOnce
from actors.routing import PlacementCache
from app.application.ports import PlayerUpdate, RatingRead, UpdateResult
from app.domain.placement import Moved, Placement
from app.domain.stats import ServiceRecord
from app.observability.logs import bind

if TYPE_CHECKING:
    pass

IDLE_SWEEP_S = 30.0


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)
class PlayerShard:
    """One shard of the player pool; its storage client lives in this actor's process."""

    def __init__(self, index: int, config: ActorConfig, placement: Placement) -> None:
        configure_actor_logging(config, member_name("player", index))
        self._index = index
        self._config = config
        self._member = Membership("player", index, placement)
        self._host = BuiltOnce(self._build_host)
        self._sweeper: asyncio.Task[None] | None = None
        self._killer = ActorKiller(config.faults.actor_kill, f"player shard {index}")

    async def _build_host(self) -> PlayerGrainHost:
        storage = await open_storage(self._config)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        # Routed from this shard's placement (it knows the board pool's size too); until
        # the board members answer, the feed keeps its marks and offers them later.
        placements = PlacementCache(self._config.namespace, self._member.placement)
        boards = RayLeaderboards(placements)
        return PlayerGrainHost(storage.players, self._config.grains, boards=boards)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(IDLE_SWEEP_S)
            host = self._host.value
            if host is not None:
                with contextlib.suppress(Exception):
                    host.collect_idle()

    async def update(
        self, updates: Sequence[PlayerUpdate], placement: Placement | None = None
    ) -> list[UpdateResult] | Moved:
        """Apply or compensate matches for players of this shard (``Moved`` when one of
        them is not, under the newer of the caller's placement and this shard's)."""
        with bind(match_id=match_of(updates)):
            host = await self._host.get()
            moved = self._check([u.delta.player_id for u in updates], placement)
            if moved:
                return moved
            with self._member.call():
                results = await host.update(updates)
            self._killer.maybe_die(f"after updating {len(updates)} players, before answering")
            return results

    async def service_record(
        self, player_id: str, placement: Placement | None = None
    ) -> ServiceRecord | Moved:
        """A player's record, from its activation."""
        host = await self._host.get()
        moved = self._check([player_id], placement)
        if moved:
            return moved
        with self._member.call():
            return await host.service_record(player_id)

    async def ratings_of(
        self, wanted: Sequence[tuple[str, str]], placement: Placement | None = None
    ) -> list[RatingRead | None] | Moved:
        """The rating of each (player, mode), from the activations or guessed (``None``:
        could not be read)."""
        host = await self._host.get()
        moved = self._check([pid for pid, _ in wanted], placement)
        if moved:
            return moved
        with self._member.call():
            return await host.ratings_of(wanted)

    async def adopt(self, placement: Placement) -> int:
        """Take a newer placement (pushed by the pool directory on a resize); the grains of
        players that moved away are deactivated after their current turn. Returns how many
        grains retire."""
        await self._host.get()
        return self._adopt(placement)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until no call is running here (a shrinking pool's surplus shard)."""
        return await self._member.drain(timeout_s)

    async def deactivate(self, player_ids: Sequence[str] | None = None) -> int:
        """Drop activations (all when ``None``); they reload from storage on next use."""
        return (await self._host.get()).deactivate(player_ids)

    async def stats(self) -> dict[str, Any]:
        """Counters of this shard, and where it runs."""
        return {**self._member.stats(), **(await self._host.get()).stats()}

    def _check(self, player_ids: list[str], placement: Placement | None) -> Moved | None:
        self._adopt(placement)
        return self._member.check(player_ids, placement)

    def _adopt(self, placement: Placement | None) -> int:
        """Take a newer placement; players that moved away retire from this shard."""
        host = self._host.value
        if not self._member.adopt(placement) or host is None:
            return 0
        return host.retire(self._member.owns)

    async def ping(self) -> int:
        """Liveness probe (opens nothing: a shard is up before its storage is)."""
        return self._index
