"""Virtual player grains, hosted in one process: the logic of a ``PlayerShard`` without Ray.

A grain is activated on its first call (its record and etag loaded from the store; a read
of a player with no record activates nothing; a first apply may skip the load and write as
if the player were new, see ``NewPlayerGuess``), takes
one call at a time (a per-player lock), serves reads from memory, and is deactivated when
idle, when the host needs room (least recently used first), or when its player moved to
another shard (after its current turn). Deactivation writes nothing: every change is
durable before the call that made it returns.

The host never holds more than ``capacity`` grains: a call for a new player when every
grain is in a call waits for one to finish (back-pressure), rather than overflowing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from app.domain.errors import ConcurrencyConflict, PermanentError, TransientError
from app.domain.saga import Action
from app.domain.stats import ServiceRecord, StatDelta
from app.logs import bind
from app.ports import PlayerSnapshot, PlayerStore, PlayerUpdate, UpdateResult

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors that retrying cannot fix: a bug or corrupt data goes to the operators at once.
_PERMANENT = (PermanentError, ValueError, TypeError, KeyError)


@dataclass(frozen=True, slots=True)
class GrainSettings:
    """How a host keeps its grains and retries storage in process."""

    capacity: int = 10_000
    idle_ttl_s: float = 300.0
    conflict_retries: int = 8
    storage_attempts: int = 3
    storage_backoff_s: float = 0.05
    # Updates of one player queued behind a turn are written together by the next one, up
    # to this many matches in one transaction (the Table service takes 100 rows).
    turn_batch: int = 50
    # A grain's first apply may write as if its player were new, with no read first, when
    # most recent first applies were of new players (``NewPlayerGuess``).
    blind_insert: bool = True


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


@dataclass(slots=True)  # thousands per shard: no per-instance __dict__
class _Grain:
    snapshot: PlayerSnapshot | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = 0.0
    waiting: int = 0  # callers in or queued for a turn
    retiring: bool = False  # its player moved: deactivate once the last caller leaves
    fresh: bool = True  # no turn has touched storage yet: its first apply is a cold one
    # Updates waiting for a turn; whoever holds the lock next runs them all (group commit).
    queued: list[_Call] = field(default_factory=list)


@dataclass(slots=True)
class _Call:
    """One queued update of this player, and where its result goes."""

    update: PlayerUpdate
    result: asyncio.Future[UpdateResult]


@dataclass
class HostCounters:
    """What operators see of one host."""

    activations: int = 0
    deactivations: int = 0
    calls: int = 0  # turns; a turn may run several callers' updates
    batched: int = 0  # updates that ran in a turn together with others
    failures: int = 0
    peak_active: int = 0
    capacity_waits: int = 0  # calls that waited for room (every grain was in a call)
    blind_inserts: int = 0  # first applies tried as a new player's, with no read
    blind_existing: int = 0  # ... of which met an existing record (then read and retried)


class PlayerGrainHost:
    """Hosts virtual player grains over a ``PlayerStore``."""

    def __init__(
        self,
        store: PlayerStore,
        settings: GrainSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._settings = settings or GrainSettings()
        self._clock = clock
        self._batch = max(self._settings.turn_batch, 1)
        self._grains: OrderedDict[str, _Grain] = OrderedDict()
        self._room = asyncio.Condition()
        self._guess = NewPlayerGuess()
        self.counters = HostCounters()

    # ---- public surface ------------------------------------------------------------------

    async def update(self, updates: Sequence[PlayerUpdate]) -> list[UpdateResult]:
        """Run the updates: players concurrently, each player's updates in one turn."""
        by_player: dict[str, list[PlayerUpdate]] = defaultdict(list)
        for u in updates:
            by_player[u.delta.player_id].append(u)
        per_player = await asyncio.gather(
            *(self._turn(pid, items) for pid, items in by_player.items())
        )
        results = {(r.player_id, r.match_id): r for batch in per_player for r in batch}
        return [results[(u.delta.player_id, u.delta.match_id)] for u in updates]

    async def service_record(self, player_id: str) -> ServiceRecord:
        """The player's record, from the activation (loaded on first use). A player with
        no record is answered from storage without an activation: reads of ids that never
        played (a scan, typos) must not push warm grains out of a full host."""
        peeked: PlayerSnapshot | None = None
        turns = self.counters.calls
        if player_id not in self._grains:
            peeked = await self._storage(partial(self._store.load, player_id))
            if peeked.etag is None:
                return peeked.record
        grain = await self._enter(player_id)
        try:
            async with grain.lock:
                # Only a turn run since the peek can have made it stale (none of this
                # player's was running then: it had no grain); if one ran, load afresh.
                if grain.snapshot is None and peeked is not None and self.counters.calls == turns:
                    grain.snapshot = peeked
                    self.counters.activations += 1
                return (await self._activated(player_id, grain)).record
        finally:
            await self._leave(player_id, grain)

    def deactivate(self, player_ids: Sequence[str] | None = None) -> int:
        """Drop activations (all when ``None``) that no call holds; returns how many."""
        victims = list(self._grains) if player_ids is None else list(player_ids)
        dropped = 0
        for pid in victims:
            grain = self._grains.get(pid)
            if grain is not None and _idle(grain):
                del self._grains[pid]
                dropped += 1
        self.counters.deactivations += dropped
        return dropped

    def retire(self, keep: Callable[[str], bool]) -> int:
        """Deactivate every grain whose player ``keep`` rejects (it moved to another
        shard): idle ones now, busy ones when their last queued call is done. Returns
        how many are retiring."""
        gone = [pid for pid in self._grains if not keep(pid)]
        for pid in gone:
            self._grains[pid].retiring = True
        self.deactivate(gone)
        return len(gone)

    def players(self) -> list[str]:
        """The players with an activation, least recently used first."""
        return list(self._grains)

    def collect_idle(self) -> int:
        """Deactivate grains idle for longer than the TTL."""
        cutoff = self._clock() - self._settings.idle_ttl_s
        return self.deactivate([p for p, g in self._grains.items() if g.last_used < cutoff])

    def stats(self) -> dict[str, int]:
        """Counters and gauges of this host."""
        return {
            "active": len(self._grains),
            "in_flight": sum(1 for g in self._grains.values() if g.lock.locked()),
            "queued": sum(max(g.waiting - 1, 0) for g in self._grains.values()),
            "activations": self.counters.activations,
            "deactivations": self.counters.deactivations,
            "calls": self.counters.calls,
            "batched": self.counters.batched,
            "failures": self.counters.failures,
            "peak_active": self.counters.peak_active,
            "capacity_waits": self.counters.capacity_waits,
            "blind_inserts": self.counters.blind_inserts,
            "blind_existing": self.counters.blind_existing,
            "capacity": self._settings.capacity,
        }

    # ---- one player's turn ---------------------------------------------------------------

    async def _enter(self, player_id: str) -> _Grain:
        grain = self._grains.get(player_id)
        while grain is None:
            excess = len(self._grains) + 1 - self._settings.capacity
            if excess <= 0 or self._evict(excess) >= excess:
                grain = self._grains[player_id] = _Grain()
                self.counters.peak_active = max(self.counters.peak_active, len(self._grains))
                break
            # Every grain is in a call: wait until one is done rather than overflow.
            self.counters.capacity_waits += 1
            async with self._room:
                await self._room.wait()
            grain = self._grains.get(player_id)
        self._grains.move_to_end(player_id)
        grain.waiting += 1
        grain.retiring = False  # called again: its player is (back) on this shard
        grain.last_used = self._clock()
        return grain

    async def _leave(self, player_id: str, grain: _Grain) -> None:
        grain.waiting -= 1
        grain.last_used = self._clock()
        if grain.retiring and _idle(grain) and self._grains.get(player_id) is grain:
            del self._grains[player_id]
            self.counters.deactivations += 1
        if grain.waiting == 0:
            async with self._room:
                self._room.notify_all()

    def _evict(self, n: int) -> int:
        """Deactivate up to ``n`` idle grains, least recently used first."""
        idle = [p for p, g in self._grains.items() if _idle(g)]
        return self.deactivate(idle[:n])

    async def _activated(self, player_id: str, grain: _Grain) -> PlayerSnapshot:
        if grain.snapshot is None:
            grain.snapshot = await self._storage(partial(self._store.load, player_id))
            self.counters.activations += 1
        return grain.snapshot

    async def _turn(self, player_id: str, updates: list[PlayerUpdate]) -> list[UpdateResult]:
        with bind(match_id=match_of(updates), player_id=player_id):
            return await self._bound_turn(player_id, updates)

    async def _bound_turn(self, player_id: str, updates: list[PlayerUpdate]) -> list[UpdateResult]:
        """Queue the updates; the first caller to get the grain's lock runs everything
        queued by then in one turn (one transaction for all its applies), so a popular
        player's updates do not wait for one write each (a hot grain, found by the bench).

        Each update queues on its own: one shard call may carry several matches of this
        player (concurrent sagas' batches sent together), and a turn that fails is run
        again one queued call at a time, so a bad match must be a call of its own."""
        grain = await self._enter(player_id)
        try:
            loop = asyncio.get_running_loop()
            calls = [_Call(u, loop.create_future()) for u in updates]
            grain.queued.extend(calls)
            async with grain.lock:
                while not all(call.result.done() for call in calls):
                    await self._run_queued(player_id, grain)
            return [call.result.result() for call in calls]
        finally:
            await self._leave(player_id, grain)

    async def _run_queued(self, player_id: str, grain: _Grain) -> None:
        """One turn over the oldest queued updates (``turn_batch`` at most)."""
        batch = grain.queued[: self._batch]
        del grain.queued[: len(batch)]
        try:
            if len(batch) > 1:
                self.counters.batched += len(batch)
            results = await self._checked_turn(player_id, grain, [c.update for c in batch])
            for call, result in zip(batch, results, strict=True):
                _answer(call, result)
        finally:
            # Cancelled mid-turn (the actor is stopping): the others must not wait forever.
            interrupted = _failed([c.update for c in batch], "the turn was interrupted", True)
            for call, result in zip(batch, interrupted, strict=True):
                _answer(call, result)

    async def _checked_turn(
        self, player_id: str, grain: _Grain, updates: list[PlayerUpdate]
    ) -> list[UpdateResult]:
        """Each update's result; when the turn fails, its updates run one by one, so that
        one bad match cannot fail the updates it happened to be batched with."""
        self.counters.calls += 1
        try:
            results = await self._run(player_id, grain, updates)
            log.debug(
                "player turn: %s",
                ", ".join(f"{u.action.value} {u.delta.match_id}" for u in updates),
                extra={"changed": sum(r.changed for r in results)},
            )
        except Exception as exc:  # reported per player, never lost
            grain.snapshot = None  # reload next time: the cache may be stale
            if len(updates) > 1:
                return [(await self._checked_turn(player_id, grain, [u]))[0] for u in updates]
            self.counters.failures += 1
            transient = not isinstance(exc, _PERMANENT)
            if not transient:
                log.exception("player %s: permanent failure", player_id)
            return _failed(updates, f"{type(exc).__name__}: {exc}", transient)
        return results

    async def _run(
        self, player_id: str, grain: _Grain, updates: list[PlayerUpdate]
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
        self, player_id: str, grain: _Grain, deltas: list[StatDelta], cold: bool
    ) -> list[UpdateResult]:
        """``cold``: the grain's first turn, with nothing loaded (a cold activation)."""
        blind = cold and self._settings.blind_insert and self._guess.likely_new()
        for _ in range(self._settings.conflict_retries):
            if blind:
                # Written as a new player's: the record op is a create, which fails whole
                # (409, nothing written) if the record exists, and markers go first, so a
                # replay is still found applied. It is a load from before the record was
                # created: a stale snapshot, which every write already guards against.
                snapshot = PlayerSnapshot(ServiceRecord(player_id), None)
                self.counters.blind_inserts += 1
            else:
                snapshot = await self._activated(player_id, grain)
                if cold:
                    self._guess.observe(snapshot.etag is None)
            cold = False
            try:
                outcome = await self._storage(partial(self._store.apply, snapshot, deltas))
            except ConcurrencyConflict:
                # Another writer (a doubled activation during a resize, say): reload. After a
                # blind insert: the player was known after all.
                grain.snapshot = None
                if blind:
                    self.counters.blind_existing += 1
                    self._guess.observe(False)
                    blind = False
                continue
            if blind and outcome.applied:
                # The record was created: the player was new (only replays say nothing).
                self._guess.observe(True)
            # A match found applied may have been written by an attempt whose answer was
            # lost: the record moved without this activation seeing it. Reload it.
            grain.snapshot = None if outcome.already else outcome.snapshot
            if blind and grain.snapshot is not None:
                self.counters.activations += 1  # activated by its write instead of a load
            changed = set(outcome.applied)
            return [
                UpdateResult(player_id, d.match_id, True, d.match_id in changed) for d in deltas
            ]
        raise ConcurrencyConflict(f"player {player_id}: etag conflicts kept coming")

    async def _revert(self, player_id: str, grain: _Grain, delta: StatDelta) -> UpdateResult:
        for _ in range(self._settings.conflict_retries):
            snapshot = await self._activated(player_id, grain)
            try:
                outcome = await self._storage(partial(self._store.revert, snapshot, delta))
            except ConcurrencyConflict:
                grain.snapshot = None
                continue
            # Nothing reverted now may mean an earlier attempt did it: reload, as above.
            grain.snapshot = outcome.snapshot if outcome.reverted else None
            return UpdateResult(player_id, delta.match_id, True, outcome.reverted)
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


def match_of(updates: Sequence[PlayerUpdate]) -> str | None:
    """The match these updates are about, if they are all about one (a saga's are)."""
    matches = {u.delta.match_id for u in updates}
    return matches.pop() if len(matches) == 1 else None


def _failed(updates: Sequence[PlayerUpdate], error: str, transient: bool) -> list[UpdateResult]:
    return [
        UpdateResult(u.delta.player_id, u.delta.match_id, False, error=error, transient=transient)
        for u in updates
    ]


def _answer(call: _Call, result: UpdateResult) -> None:
    """Hand ``result`` to a call once (a caller that gave up no longer listens)."""
    if not call.result.done():
        call.result.set_result(result)


def _idle(grain: _Grain) -> bool:
    return grain.waiting == 0 and not grain.lock.locked()
