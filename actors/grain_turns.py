"""A grain's turn: one player's queued updates, written together (group commit), each
caller answered with its own results.

A turn holds the grain's lock (one turn at a time per player), applies in one
transaction, compensates one match at a time, and retries in process what a quick retry
can fix: an etag conflict (reload, write again) and a transient storage failure. A first
apply may skip the load and write as if the player were new (``NewPlayerGuess``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from actors.grain_activations import Grain, QueuedUpdate
from actors.grain_settings import GrainSettings, HostCounters
from app.application.ports import (
    ApplyOutcome,
    PlayerSnapshot,
    PlayerStore,
    PlayerUpdate,
    RevertOutcome,
    UpdateResult,
)
from app.domain.errors import ConcurrencyConflict, PermanentError, TransientError
from app.domain.ratings import SkillRating
from app.domain.saga import Action
from app.domain.stats import ServiceRecord, StatDelta

# The grain's lines keep the logger name they had before the turn had a module of its
# own: operators' filters (and tests/unit/test_saga_logs.py) select them by it.
log = logging.getLogger("actors.grains")
T = TypeVar("T")

# Errors that retrying cannot fix: a bug or corrupt data goes to the operators at once.
_PERMANENT = (PermanentError, ValueError, TypeError, KeyError)


class NewPlayerGuess:
    """Whether the next cold activation (a grain's first apply) is likely of a new player:
    the share of new players among the last ``window`` cold activations seen, against
    ``threshold``.

    It starts out guessing "new": either start is corrected by the first outcome (both the
    blind insert and the read say whether the player was new), and the workloads with the
    most cold activations (a fresh deployment, a launch, a load test) are of new players.
    """

    def __init__(self, window: int = 64, threshold: float = 0.5) -> None:
        self._seen: deque[bool] = deque(maxlen=window)
        self._new = 0
        self._threshold = threshold

    def likely_new(self) -> bool:
        """Guess "new" unless fewer than ``threshold`` of the recent cold activations were."""
        return not self._seen or self._new >= self._threshold * len(self._seen)

    def observe(self, new: bool) -> None:
        """A cold activation turned out to be of a new player (``True``) or a known one."""
        if len(self._seen) == self._seen.maxlen:
            self._new -= self._seen[0]
        self._seen.append(new)
        self._new += new


class PlayerTurns:
    """Runs the turns of one host's grains over a ``PlayerStore``."""

    def __init__(self, store: PlayerStore, settings: GrainSettings, counters: HostCounters) -> None:
        self._store = store
        self._settings = settings
        self._counters = counters
        self._batch = max(settings.turn_batch, 1)
        self._guess = NewPlayerGuess()

    async def run(
        self, player_id: str, grain: Grain, updates: list[PlayerUpdate]
    ) -> list[UpdateResult]:
        """Queue the updates; the first caller to get the grain's lock runs everything
        queued by then in one turn (one transaction for all its applies), so a popular
        player's updates do not wait for one write each (a hot grain, found by the bench).

        Each update queues on its own: one shard call may carry several matches of this
        player (concurrent sagas' batches sent together), and a turn that fails is run
        again one queued call at a time, so a bad match must be a call of its own."""
        loop = asyncio.get_running_loop()
        calls = [QueuedUpdate(u, loop.create_future()) for u in updates]
        grain.queued.extend(calls)
        async with grain.lock:
            while not all(call.result.done() for call in calls):
                await self._run_queued(player_id, grain)
        return [call.result.result() for call in calls]

    def guesses_new(self) -> bool:
        """Whether a cold player's first apply would be a blind insert now: a rating read
        of a player with no activation may then be answered with the default rating,
        unread (the apply checks it: ``_wrong_guesses``)."""
        return self._settings.blind_insert and self._guess.likely_new()

    async def load(self, player_id: str) -> PlayerSnapshot:
        """The player's stored record and etag, with the quick storage retries."""
        return await self._storage(partial(self._store.load, player_id))

    async def activated(self, player_id: str, grain: Grain) -> PlayerSnapshot:
        """The grain's snapshot, loaded (an activation) when it has none."""
        if grain.snapshot is None:
            grain.snapshot = await self.load(player_id)
            self._counters.activations += 1
        return grain.snapshot

    async def _run_queued(self, player_id: str, grain: Grain) -> None:
        """One turn over the oldest queued updates (``turn_batch`` at most)."""
        batch = grain.queued[: self._batch]
        del grain.queued[: len(batch)]
        try:
            if len(batch) > 1:
                self._counters.batched += len(batch)
            results = await self._checked_turn(player_id, grain, [c.update for c in batch])
            for call, result in zip(batch, results, strict=True):
                _answer(call, result)
        finally:
            # Cancelled mid-turn (the actor is stopping): the others must not wait forever.
            interrupted = _failed([c.update for c in batch], "the turn was interrupted", True)
            for call, result in zip(batch, interrupted, strict=True):
                _answer(call, result)

    async def _checked_turn(
        self, player_id: str, grain: Grain, updates: list[PlayerUpdate]
    ) -> list[UpdateResult]:
        """Each update's result; when the turn fails, its updates run one by one, so that
        one bad match cannot fail the updates it happened to be batched with."""
        self._counters.calls += 1
        try:
            results = await self._turn(player_id, grain, updates)
            if log.isEnabledFor(logging.DEBUG):  # the line's arguments cost every turn
                log.debug(
                    "player turn: %s",
                    ", ".join(f"{u.action.value} {u.delta.match_id}" for u in updates),
                    extra={"changed": sum(r.changed for r in results)},
                )
        except Exception as exc:  # reported per player, never lost
            grain.snapshot = None  # reload next time: the cache may be stale
            if len(updates) > 1:
                return [(await self._checked_turn(player_id, grain, [u]))[0] for u in updates]
            self._counters.failures += 1
            transient = not isinstance(exc, _PERMANENT)
            if not transient:
                log.exception("player %s: permanent failure", player_id)
            return _failed(updates, f"{type(exc).__name__}: {exc}", transient)
        return results

    async def _turn(
        self, player_id: str, grain: Grain, updates: list[PlayerUpdate]
    ) -> list[UpdateResult]:
        """Results in the order of ``updates``: applies first, in one transaction, then
        compensations one at a time."""
        applies = [u.delta for u in updates if u.action is Action.APPLY]
        cold = grain.fresh and grain.snapshot is None
        grain.fresh = False
        applied: dict[str, UpdateResult] = {}
        if applies:
            applied = {r.match_id: r for r in await self._apply(player_id, grain, applies, cold)}
        results: list[UpdateResult] = []
        for u in updates:
            if u.action is Action.APPLY:
                results.append(applied[u.delta.match_id])
            else:
                results.append(await self._revert(player_id, grain, u.delta))
        return results

    async def _apply(
        self, player_id: str, grain: Grain, deltas: list[StatDelta], cold: bool
    ) -> list[UpdateResult]:
        """``cold``: the grain's first turn, with nothing loaded (a cold activation)."""
        blind: PlayerSnapshot | None = None
        if cold and self._settings.blind_insert and self._guess.likely_new():
            # Written as a new player's: the record op is a create, which fails whole
            # (409, nothing written) if the record exists, and markers go first, so a
            # replay is still found applied. It is a load from before the record was
            # created: a stale snapshot, which every write already guards against.
            blind = PlayerSnapshot(ServiceRecord(player_id), None)

        async def snapshot_for(attempt: int) -> PlayerSnapshot:
            if attempt == 0 and blind is not None:
                self._counters.blind_inserts += 1
                return blind
            snapshot = await self.activated(player_id, grain)
            if attempt == 0 and cold:
                self._guess.observe(snapshot.etag is None)
            return snapshot

        def refused(snapshot: PlayerSnapshot) -> None:
            if snapshot is blind:  # the player was known after all
                self._counters.blind_existing += 1
                self._guess.observe(False)

        # This attempt's changes computed from a guessed rating the player turned out not
        # to have: match id -> the rating the player has (the saga rates them again).
        refusals: dict[str, SkillRating] = {}

        async def write(snapshot: PlayerSnapshot) -> ApplyOutcome:
            refusals.clear()
            if not grain.born:
                refusals.update(await self._wrong_guesses(deltas, snapshot.record))
            kept = [d for d in deltas if d.match_id not in refusals]
            if not kept:
                return ApplyOutcome(snapshot)
            return await self._store.apply(snapshot, kept)

        used, outcome = await self._until_current(player_id, grain, snapshot_for, write, refused)
        if used is blind and outcome.applied:
            # The record was created: the player was new (only replays say nothing).
            self._guess.observe(True)
        if used.etag is None and outcome.applied:
            grain.born = True  # created by this write (blind, or after a load found none)
        # A match found applied may have been written by an attempt whose answer was
        # lost: the record moved without this activation seeing it. Reload it.
        grain.snapshot = None if outcome.already else outcome.snapshot
        if used is blind and grain.snapshot is not None:
            self._counters.activations += 1  # activated by its write instead of a load
        self._counters.guessed_wrong += len(refusals)
        changed = set(outcome.applied)
        return [
            UpdateResult(player_id, d.match_id, True, d.match_id in changed)
            if d.match_id not in refusals
            else UpdateResult(
                player_id,
                d.match_id,
                False,
                error=f"rated from a guessed rating; the player has one in {d.mode!r}",
                rerate=refusals[d.match_id],
            )
            for d in deltas
        ]

    async def _wrong_guesses(
        self, deltas: list[StatDelta], record: ServiceRecord
    ) -> dict[str, SkillRating]:
        """The matches of ``deltas`` whose rating change was computed from a guessed
        (default) rating while ``record`` has a rating in the mode: the player may not
        have been new to it, so the change could move them by a wrong amount. Not asked
        of an activation that created the record (``Grain.born``): a popular new player's
        concurrent matches, all guessed before the first landed, were all rightly rated
        from the default rating (each from the rating the player had when it was read,
        the rule of concurrent matches). A match whose history row exists is not one
        (applied before, or voided): the store answers it "already". One point read per
        such match: they are rare."""
        wrong: dict[str, SkillRating] = {}
        for d in deltas:
            if d.rating is None or not d.rating.guessed:
                continue
            rating = record.rating(d.mode)
            if rating.matches == 0:
                continue
            if await self._store.history_row(d) is None:
                wrong[d.match_id] = rating
        return wrong

    async def _revert(self, player_id: str, grain: Grain, delta: StatDelta) -> UpdateResult:
        async def snapshot_for(attempt: int) -> PlayerSnapshot:
            return await self.activated(player_id, grain)

        def write(snapshot: PlayerSnapshot) -> Awaitable[RevertOutcome]:
            return self._store.revert(snapshot, delta)

        _, outcome = await self._until_current(player_id, grain, snapshot_for, write)
        # Nothing reverted now may mean an earlier attempt did it: reload, as after an apply.
        grain.snapshot = outcome.snapshot if outcome.reverted else None
        return UpdateResult(player_id, delta.match_id, True, outcome.reverted)

    async def _until_current(
        self,
        player_id: str,
        grain: Grain,
        snapshot_for: Callable[[int], Awaitable[PlayerSnapshot]],
        write: Callable[[PlayerSnapshot], Awaitable[T]],
        refused: Callable[[PlayerSnapshot], None] = lambda _: None,
    ) -> tuple[PlayerSnapshot, T]:
        """``write`` over the snapshot of each attempt (``snapshot_for(attempt)``) until
        it is not refused for a stale etag; returns the snapshot written over, and what
        the write returned."""
        for attempt in range(self._settings.conflict_retries):
            snapshot = await snapshot_for(attempt)
            try:
                outcome = await self._storage(partial(write, snapshot))
            except ConcurrencyConflict:
                # Another writer (a doubled activation during a resize, say), or a blind
                # insert of a known player: reload.
                grain.snapshot = None
                refused(snapshot)
                continue
            return snapshot, outcome
        raise ConcurrencyConflict(f"player {player_id}: etag conflicts kept coming")

    async def _storage(self, call: Callable[[], Awaitable[T]]) -> T:
        """A storage call with a few quick in-process retries of transient failures; what
        still fails goes back to the saga, which retries durably through the bus."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self._settings.storage_attempts),
            wait=wait_random_exponential(multiplier=self._settings.storage_backoff_s, max=1.0),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await call()
        raise AssertionError("unreachable: tenacity reraises")


def _failed(updates: Sequence[PlayerUpdate], error: str, transient: bool) -> list[UpdateResult]:
    return [
        UpdateResult(u.delta.player_id, u.delta.match_id, False, error=error, transient=transient)
        for u in updates
    ]


def _answer(call: QueuedUpdate, result: UpdateResult) -> None:
    """Hand ``result`` to a call once (a caller that gave up no longer listens)."""
    if not call.result.done():
        call.result.set_result(result)
