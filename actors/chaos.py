"""Actor deaths on purpose (``STATSAGA_FAULTS=actor_kill=RATE``): a call does its work,
then, by chance, kills its actor's process before answering. That is the worst moment
to die (the change is made, the caller does not know), and Ray restarts the actor."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence

from app.application.ports import PlayerGrains, PlayerUpdate, RatingRead, UpdateResult
from app.domain.stats import ServiceRecord

log = logging.getLogger(__name__)


class ActorKiller:
    """Decides, per call, whether this actor dies now."""

    def __init__(self, rate: float, name: str) -> None:
        self.rate = rate
        self.name = name
        # Not seeded from the fault plan: a restarted actor replaying the same draws could
        # die at the same call forever.
        self._rng = random.Random()

    def maybe_die(self, where: str) -> None:
        """Exit the process at once (no cleanup, as a crash) with probability ``rate``."""
        if self.rate > 0 and self._rng.random() < self.rate:
            log.warning("fault injection: %s (pid %d) dies %s", self.name, os.getpid(), where)
            logging.shutdown()
            os._exit(17)


class DyingGrains:
    """``PlayerGrains`` whose caller (a GameActor) may die once the updates are done,
    before the saga log records them: mid-fan-out."""

    def __init__(self, inner: PlayerGrains, killer: ActorKiller) -> None:
        self._inner = inner
        self._killer = killer

    async def update(self, updates: Sequence[PlayerUpdate]) -> list[UpdateResult]:
        """Run the updates, then maybe die before the results are logged."""
        results = await self._inner.update(updates)
        self._killer.maybe_die(f"after updating {len(updates)} players, before logging it")
        return results

    async def service_record(self, player_id: str) -> ServiceRecord:
        """Reads never kill."""
        return await self._inner.service_record(player_id)

    async def ratings(self, mode: str, player_ids: Sequence[str]) -> dict[str, RatingRead]:
        """Reads never kill."""
        return await self._inner.ratings(mode, player_ids)
