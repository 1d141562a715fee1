"""Virtual player grains, hosted in one process: the logic of a ``PlayerShard`` without Ray.

A grain is activated on its first call (its record and etag loaded from the store; a read
of a player with no record activates nothing; a first apply may skip the load and write as
if the player were new, see ``NewPlayerGuess``), takes one call at a time (a per-player
lock), serves reads from memory, and is deactivated when idle, when the host needs room,
or when its player moved to another shard.

``PlayerGrainHost`` is the host's surface; which grains are active is
``grain_activations.py``'s business, what a grain does in a turn ``grain_turns.py``'s.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from actors.board_feed import BoardFeed
from actors.grain_activations import GrainActivations
from actors.grain_settings import GrainSettings, HostCounters
from actors.grain_turns import NewPlayerGuess, PlayerTurns
from app.application.ports import (
    Leaderboards,
    PlayerSnapshot,
    PlayerStore,
    PlayerUpdate,
    RatingRead,
    UpdateResult,
)
from app.domain.ratings import SkillRating
from app.domain.stats import ServiceRecord
from app.observability.logs import bind

__all__ = [
    "GrainSettings",
    "HostCounters",
    "NewPlayerGuess",
    "PlayerGrainHost",
    "match_of",
]


class PlayerGrainHost:
    """Hosts virtual player grains over a ``PlayerStore``."""

    def __init__(
        self,
        store: PlayerStore,
        settings: GrainSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        boards: Leaderboards | None = None,
    ) -> None:
        self._settings = settings or GrainSettings()
        self.counters = HostCounters()
        self._activations = GrainActivations(self._settings, clock, self.counters)
        self._turns = PlayerTurns(store, self._settings, self.counters)
        # The leaderboards learn the players' new values from here (see board_feed.py).
        self.feed = BoardFeed(boards, self.stored_record) if boards is not None else None

    async def update(self, updates: Sequence[PlayerUpdate]) -> list[UpdateResult]:
        """Run the updates: players concurrently, each player's updates in one turn."""
        by_player: dict[str, list[PlayerUpdate]] = defaultdict(list)
        for u in updates:
            by_player[u.delta.player_id].append(u)
        per_player = await asyncio.gather(
            *(self._turn(pid, items) for pid, items in by_player.items())
        )
        if self.feed is not None:  # before answering: see board_feed.py
            await self.feed.offered()
        results = {(r.player_id, r.match_id): r for batch in per_player for r in batch}
        return [results[(u.delta.player_id, u.delta.match_id)] for u in updates]

    async def service_record(self, player_id: str) -> ServiceRecord:
        """The player's record, from the activation (loaded on first use). A player with
        no record is answered from storage without an activation: reads of ids that never
        played (a scan, typos) must not push warm grains out of a full host."""
        return await self._read(player_id, activate_new=False)

    async def _read(self, player_id: str, activate_new: bool) -> ServiceRecord:
        """The record through the activation; ``activate_new``: a player with no record
        is activated too (with the empty record, so that a first apply creates it without
        reading it again), and the grain is entered at once and loaded in it: one read,
        where a peek first would read twice whenever the peek cannot be kept."""
        peeked: PlayerSnapshot | None = None
        evictions = self.counters.deactivations
        if player_id not in self._activations and not activate_new:
            peeked = await self._turns.load(player_id)
            if peeked.etag is None:
                return peeked.record
        grain = await self._activations.enter(player_id)
        try:
            async with grain.lock:
                # Only a turn of this player since the peek can have made it stale (none
                # was running then: it had no grain). A grain no turn has touched, which
                # no eviction can have replaced since, had none: else load afresh. (Any
                # turn of the host would be too coarse: under load one always has run.)
                fresh = grain.fresh and self.counters.deactivations == evictions
                if grain.snapshot is None and peeked is not None and fresh:
                    grain.snapshot = peeked
                    self.counters.activations += 1
                return (await self._turns.activated(player_id, grain)).record
        finally:
            await self._activations.leave(player_id, grain)

    async def stored_record(self, player_id: str) -> ServiceRecord:
        """The player's record as stored, activating nothing: the board feed reads it
        when a turn left no record in the grain, possibly later (a retry), when the player
        may have moved to another shard, where a grain activated here would go stale."""
        return (await self._turns.load(player_id)).record

    async def ratings(self, mode: str, player_ids: Sequence[str]) -> dict[str, RatingRead]:
        """The players' ratings in ``mode`` (the port's ``ratings``)."""
        found = await self.ratings_of([(pid, mode) for pid in player_ids])
        return {pid: r for pid, r in zip(player_ids, found, strict=True) if r is not None}

    async def ratings_of(self, wanted: Sequence[tuple[str, str]]) -> list[RatingRead | None]:
        """The rating of each (player, mode), ``None`` where the record could not be
        loaded. A Game actor reads them to rate a match whose players it updates next, so
        every player read is activated, a new one too: its first apply then writes without
        a read, and the read here was the one that apply would have made.

        A player with no activation while the host guesses cold players are new (its
        first apply would be a blind insert) is not read: the default rating, marked
        ``guessed``, and no activation (the 404 read is what the blind insert saves). The
        apply checks the guess (``PlayerTurns._wrong_guesses``): a wrong one is refused,
        and the saga rates that player again from the rating they have."""
        players = list(dict.fromkeys(pid for pid, _ in wanted))
        guessing = self._turns.guesses_new()
        guessed = {p for p in players if guessing and p not in self._activations}
        self.counters.guessed_ratings += len(guessed)
        read = [p for p in players if p not in guessed]
        records = await asyncio.gather(
            *(self._read(pid, activate_new=True) for pid in read), return_exceptions=True
        )
        by_player = dict(zip(read, records, strict=True))
        out: list[RatingRead | None] = []
        for pid, mode in wanted:
            record = by_player.get(pid)
            if pid in guessed:
                out.append(RatingRead(SkillRating(), guessed=True))
            elif isinstance(record, ServiceRecord):
                out.append(RatingRead(record.rating(mode)))
            else:
                out.append(None)
        return out

    def deactivate(self, player_ids: Sequence[str] | None = None) -> int:
        """Drop activations (all when ``None``) that no call holds; returns how many."""
        return self._activations.deactivate(player_ids)

    def retire(self, keep: Callable[[str], bool]) -> int:
        """Deactivate every grain whose player ``keep`` rejects (it moved to another
        shard): idle ones now, busy ones when their last queued call is done. Returns
        how many are retiring."""
        return self._activations.retire(keep)

    def players(self) -> list[str]:
        """The players with an activation, least recently used first."""
        return self._activations.players()

    def collect_idle(self) -> int:
        """Deactivate grains idle for longer than the TTL."""
        return self._activations.collect_idle()

    def stats(self) -> dict[str, int]:
        """Counters and gauges of this host."""
        return {
            **self._activations.gauges(),
            "activations": self.counters.activations,
            "deactivations": self.counters.deactivations,
            "calls": self.counters.calls,
            "batched": self.counters.batched,
            "failures": self.counters.failures,
            "peak_active": self.counters.peak_active,
            "capacity_waits": self.counters.capacity_waits,
            "blind_inserts": self.counters.blind_inserts,
            "blind_existing": self.counters.blind_existing,
            "guessed_ratings": self.counters.guessed_ratings,
            "guessed_wrong": self.counters.guessed_wrong,
            "capacity": self._settings.capacity,
        }

    async def _turn(self, player_id: str, updates: list[PlayerUpdate]) -> list[UpdateResult]:
        """The player's updates in its grain's turn, the grain held for the while."""
        with bind(match_id=match_of(updates), player_id=player_id):
            grain = await self._activations.enter(player_id)
            try:
                results = await self._turns.run(player_id, grain, updates)
                if self.feed is not None:
                    held = grain.snapshot.record if grain.snapshot is not None else None
                    self.feed.touched(updates, results, held)
            finally:
                await self._activations.leave(player_id, grain)
            return results


def match_of(updates: Sequence[PlayerUpdate]) -> str | None:
    """The match these updates are about, if they are all about one (a saga's are)."""
    matches = {u.delta.match_id for u in updates}
    return matches.pop() if len(matches) == 1 else None
