"""``PlayerGrains`` over the Ray shard pool: routes each player to its shard by the newest
placement this process knows, sends the batches of concurrent callers (a GameActor's
sagas) for one shard in one call, and turns a shard that stays unreachable into transient
per-player failures (the saga retries those durably)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from ray.exceptions import RayError

from actors.coalescer import IN_FLIGHT, MAX_BATCH, Coalescer
from actors.routing import MAX_ROUNDS, MemberGone, PlacementCache, PoolRouter
from app.application.ports import PlayerUpdate, RatingRead, UpdateResult
from app.domain.errors import PoolUnavailable, StorageUnavailable
from app.domain.placement import Moved, Placement, group_by_owner
from app.domain.stats import ServiceRecord


class _Gone:
    """A shard's answer when it no longer exists: route again by a fresh placement."""


_GONE = _Gone()


class RayPlayerGrains:
    """The player grains as every process (API, worker, GameActor) reaches them."""

    def __init__(
        self,
        placements: PlacementCache,
        attempts: int = 4,
        in_flight: int = IN_FLIGHT,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._router = PoolRouter("player", placements, attempts=attempts)
        # Every answer below (Moved, _Gone, an error) reaches each caller of the call, and
        # each re-routes or fails only its own updates.
        self._calls: Coalescer[PlayerUpdate, UpdateResult, Moved | _Gone | str, Placement] = (
            Coalescer(self._send, in_flight, max_batch)
        )
        # The Game actors' rating reads, shared the same way.
        self._reads: Coalescer[
            tuple[str, str], RatingRead | None, Moved | _Gone | str, Placement
        ] = Coalescer(self._send_reads, in_flight, max_batch)

    def stats(self) -> dict[str, int]:
        """Calls made to the shards, and the callers' batches and updates they carried."""
        c = self._calls.counters
        return {"shard_calls": c.calls, "shard_batches": c.batches, "shard_updates": c.items}

    async def update(self, updates: Sequence[PlayerUpdate]) -> list[UpdateResult]:
        """All shards at once, each in one call shared with concurrent callers; updates
        re-routed while the pool is being resized."""
        placements = self._router.placements
        done: dict[tuple[str, str], UpdateResult] = {}
        pending = list(updates)
        error = "the player pool was being resized"
        for _ in range(MAX_ROUNDS):
            try:
                placement = await placements.get()
            except PoolUnavailable as exc:
                error = f"player pool unavailable: {exc}"
                break
            groups: dict[int, list[PlayerUpdate]] = {}
            for u in pending:
                groups.setdefault(placement.owner("player", u.delta.player_id), []).append(u)
            answers = await asyncio.gather(
                *(self._calls.send(i, batch, placement) for i, batch in groups.items())
            )
            pending, gone = [], False
            for (index, batch), answer in zip(groups.items(), answers, strict=True):
                if isinstance(answer, Moved):
                    placements.adopt(answer.placement)
                    pending += batch
                elif isinstance(answer, _Gone):
                    gone = True
                    pending += batch
                elif isinstance(answer, str):
                    done.update(_failed(batch, f"shard {index} unavailable: {answer}"))
                else:
                    done.update({(r.player_id, r.match_id): r for r in answer})
            if not pending:
                break
            if gone:
                try:
                    await placements.refresh()
                except PoolUnavailable as exc:
                    error = f"player pool unavailable: {exc}"
                    break
        done.update(_failed(pending, error))
        return [done[(u.delta.player_id, u.delta.match_id)] for u in updates]

    async def _send(
        self, index: int, batch: list[PlayerUpdate], placement: Placement
    ) -> list[UpdateResult] | Moved | _Gone | str:
        try:
            answer: list[UpdateResult] | Moved = await self._router.call(
                index, lambda shard: shard.update.remote(batch, placement)
            )
            return answer
        except MemberGone:
            return _GONE
        except (RayError, PoolUnavailable) as exc:
            # Whether the call ran is unknown, and that is fine: every player step is
            # idempotent. The saga retries it.
            return type(exc).__name__

    async def service_record(self, player_id: str) -> ServiceRecord:
        """Read through the player's grain; a shard that is down is ``StorageUnavailable``."""
        try:
            record: ServiceRecord = await self._router.call_for(
                player_id,
                lambda shard, placement: shard.service_record.remote(player_id, placement),
            )
            return record
        except RayError as exc:
            raise StorageUnavailable(f"player pool unavailable: {exc}") from exc

    async def ratings(self, mode: str, player_ids: Sequence[str]) -> dict[str, RatingRead]:
        """Through the players' shards, in calls shared with concurrent callers (as the
        updates are); players of a shard that failed are left out (the port's rule)."""
        placements = self._router.placements
        found: dict[str, RatingRead] = {}
        pending = list(player_ids)
        for _ in range(MAX_ROUNDS):
            try:
                placement = await placements.get()
            except PoolUnavailable:
                break
            groups = group_by_owner(pending, placement.size("player"))
            answers = await asyncio.gather(
                *(
                    self._reads.send(i, [(pid, mode) for pid in ids], placement)
                    for i, ids in groups.items()
                )
            )
            pending = []
            for ids, answer in zip(groups.values(), answers, strict=True):
                if isinstance(answer, Moved):
                    placements.adopt(answer.placement)
                    pending += ids
                elif isinstance(answer, _Gone):
                    pending += ids
                elif isinstance(answer, list):
                    found.update((p, r) for p, r in zip(ids, answer, strict=True) if r)
            if not pending:
                break
            with contextlib.suppress(PoolUnavailable):
                await placements.refresh()
        return found

    async def _send_reads(
        self, index: int, wanted: list[tuple[str, str]], placement: Placement
    ) -> list[RatingRead | None] | Moved | _Gone | str:
        try:
            answer: list[RatingRead | None] | Moved = await self._router.call(
                index, lambda shard: shard.ratings_of.remote(wanted, placement)
            )
            return answer
        except MemberGone:
            return _GONE
        except (RayError, PoolUnavailable) as exc:
            return type(exc).__name__  # its players go unrated in this match


def _failed(batch: Sequence[PlayerUpdate], error: str) -> dict[tuple[str, str], UpdateResult]:
    return {
        (u.delta.player_id, u.delta.match_id): UpdateResult(
            u.delta.player_id, u.delta.match_id, False, error=error
        )
        for u in batch
    }
