"""``GameActor``: the saga execution coordinator, one of a pool keyed by match id (see
``membership.py``: a call for a match this actor does not own answers ``Moved``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ray

from actors.chaos import ActorKiller, DyingGrains
from actors.config import ActorConfig, configure_actor_logging, member_name, open_storage
from actors.membership import Membership
from actors.once import BuiltOnce
from actors.player_grains import RayPlayerGrains
from actors.routing import PlacementCache
from app.application.commands import SagaCommand
from app.application.ports import PlayerGrains, SagaReply
from app.application.runner import LocalSagaRunner
from app.domain.placement import Moved, Placement
from app.observability.logs import bind

if TYPE_CHECKING:
    pass


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)
class GameActor:
    """Runs many match sagas concurrently (an async actor); all state is in the saga log,
    so a restarted actor has nothing to recover but its storage clients."""

    def __init__(self, index: int, config: ActorConfig, placement: Placement) -> None:
        configure_actor_logging(config, member_name("game", index))
        self._index = index
        self._config = config
        self._member = Membership("game", index, placement)
        # Shared with this actor's player grains: a newer placement learnt from a caller
        # routes the fan-out too.
        self._placements = PlacementCache(config.namespace, placement)
        self._runner = BuiltOnce(self._build_runner)
        self._sagas = 0
        self._grains: RayPlayerGrains | None = None

    async def _build_runner(self) -> LocalSagaRunner:
        storage = await open_storage(self._config)
        self._grains = RayPlayerGrains(self._placements)
        grains: PlayerGrains = self._grains
        if self._config.faults.actor_kill > 0:
            killer = ActorKiller(self._config.faults.actor_kill, f"game {self._index}")
            grains = DyingGrains(grains, killer)
        return LocalSagaRunner(storage.sagas, storage.archive, grains, self._config.retry_policy)

    async def handle(
        self, command: SagaCommand, placement: Placement | None = None
    ) -> SagaReply | Moved:
        """Run one saga command, unless its match is not this actor's under the newer of
        ``placement`` (the caller's) and ours: then ``Moved``."""
        # The runner binds the match too; this covers opening storage and routing.
        with bind(match_id=command.match_id):
            runner = await self._runner.get()
            moved = self._member.check([command.match_id], placement)
            if moved:
                return moved
            self._placements.adopt(self._member.placement)
            with self._member.call():
                self._sagas += 1
                return await runner.handle(command)

    async def adopt(self, placement: Placement) -> int:
        """Take a newer placement (pushed by the pool directory on a resize)."""
        self._member.adopt(placement)
        self._placements.adopt(placement)
        return 0

    async def drain(self, timeout_s: float) -> bool:
        """Wait until no saga call is running here (a shrinking pool's surplus actor)."""
        return await self._member.drain(timeout_s)

    async def stats(self) -> dict[str, Any]:
        """Counters of this actor, and where it runs."""
        grains = self._grains.stats() if self._grains else {}
        return {**self._member.stats(), "saga_calls": self._sagas, **grains}

    async def ping(self) -> int:
        """Liveness probe."""
        return self._index
