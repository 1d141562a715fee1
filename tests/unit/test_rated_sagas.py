"""Rated matches through the saga: the Game actor reads the players' ratings, computes each
player's change once, logs it before updating anyone, and every later step (a redelivery,
a retry, a void) applies or reverts the logged change, never a recomputed one."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from actors.grains import PlayerGrainHost
from app.application.commands import StartSaga, VoidMatch
from app.application.ports import PlayerSnapshot, PlayerUpdate, RatingRead, UpdateResult
from app.application.runner import LocalSagaRunner
from app.domain.errors import StorageUnavailable
from app.domain.ratings import SkillRating
from app.domain.stats import StatDelta
from storage.memory import InMemoryPlayerStore
from tests.support.faults import FlakyPlayerStore
from tests.unit.test_coordinator import FAST, Stack, drain, stack, stack_over


def rated_match(players: Sequence[str], match_id: str | None = None) -> dict[str, Any]:
    """Two teams, red wins: a match every rating ranks."""
    lines = [
        {
            "player_id": pid,
            "team": "red" if i % 2 == 0 else "blue",
            "outcome": "win" if i % 2 == 0 else "loss",
            "score": 100 + i,
            "kills": 3,
        }
        for i, pid in enumerate(players)
    ]
    return {
        "match_id": match_id or f"m{uuid.uuid4().hex[:8]}",
        "mode": "slayer",
        "map": "haven",
        "started_at": "2026-12-01T20:00:00Z",
        "ended_at": "2026-12-01T20:10:00Z",
        "players": lines,
    }


def some_players(n: int) -> list[str]:
    run = uuid.uuid4().hex[:6]
    return [f"p{run}-{i}" for i in range(n)]


async def rating(s: Stack, player_id: str) -> SkillRating | None:
    record = await s.runner.grains.service_record(player_id)
    return record.ratings.get("slayer")


def start_plus(*deltas: StatDelta) -> SkillRating:
    """The start rating plus the logged changes: what a player's rating must be."""
    out = SkillRating()
    for d in deltas:
        assert d.rating is not None
        out = out.plus(d.rating.delta)
    return out


async def test_a_rated_match_logs_its_changes_before_any_player_is_updated() -> None:
    s = stack()
    seen: list[int] = []
    store = s.store
    save = s.sagas.save

    async def watched(*args: Any, **kwargs: Any) -> Any:
        deltas = args[4] if len(args) > 4 else kwargs.get("deltas")
        if deltas:
            seen.append(sum(store.calls.values()))  # player writes made so far
        return await save(*args, **kwargs)

    s.sagas.save = watched  # type: ignore[method-assign]
    players = some_players(4)
    posted = rated_match(players)
    mid = posted["match_id"]
    await s.service.submit_match(posted)
    assert await drain(s, [mid]) == {mid: "completed"}
    assert seen == [0]  # logged once, before the first player write
    logged = await s.sagas.deltas(mid)
    for pid in players:
        change = logged[pid].rating
        assert change is not None and change.before == SkillRating()
        assert await rating(s, pid) == change.after == start_plus(logged[pid])
    mus = {
        pid: change.after.mu for pid, change in ((p, logged[p].rating) for p in players) if change
    }
    winners, losers = players[0::2], players[1::2]
    assert min(mus[w] for w in winners) > max(mus[lo] for lo in losers)


class DiesOnce:
    """``PlayerGrains`` whose first fan-out never happens: the Game actor dies after its
    start was logged, before any player was updated."""

    def __init__(self, inner: PlayerGrainHost) -> None:
        self.inner = inner
        self.died = False
        self.reads = 0

    async def update(self, updates: Sequence[PlayerUpdate]) -> list[UpdateResult]:
        if not self.died:
            self.died = True
            raise RuntimeError("injected: the Game actor died mid fan-out")
        return await self.inner.update(updates)

    async def service_record(self, player_id: str) -> Any:
        return await self.inner.service_record(player_id)

    async def ratings(self, mode: str, player_ids: Sequence[str]) -> dict[str, RatingRead]:
        self.reads += 1
        return await self.inner.ratings(mode, player_ids)


async def test_a_redelivered_start_applies_the_logged_changes_not_recomputed_ones() -> None:
    # Ratings read, not guessed: a guessed change of a player another match has rated
    # meanwhile is refused and logged again (tests/unit/test_guessed_ratings.py), which
    # is not what this test is about.
    s = stack_over(FlakyPlayerStore(InMemoryPlayerStore()), blind_insert=False)
    a, b, c = some_players(3)
    first, second = rated_match([a, b]), rated_match([a, c])
    for m in (first, second):
        await s.service.submit_match(m)
    dying = DiesOnce(s.runner.grains)  # type: ignore[arg-type]
    crashing = LocalSagaRunner(s.sagas, s.runner.archive, dying, FAST)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        await crashing.handle(StartSaga(first["match_id"]))
    logged = await s.sagas.deltas(first["match_id"])
    assert (await s.sagas.load(first["match_id"])).saga.state.value == "running"
    # Another match moves a's rating meanwhile: computing the first one again now would
    # give other changes.
    assert (await s.runner.handle(StartSaga(second["match_id"]))).state == "completed"
    # The message comes back: the saga resumes from its log.
    assert (await crashing.handle(StartSaga(first["match_id"]))).state == "completed"
    assert dying.reads == 1  # rated once
    assert await s.sagas.deltas(first["match_id"]) == logged
    other = await s.sagas.deltas(second["match_id"])
    assert await rating(s, a) == start_plus(logged[a], other[a])
    assert await rating(s, b) == start_plus(logged[b])
    assert await rating(s, c) == start_plus(other[c])


async def test_a_retried_player_applies_the_logged_change_once() -> None:
    players = some_players(4)
    victim = players[1]
    # More failures than the grain's in-process attempts: a durable retry through the bus.
    s = stack(transient={victim: 3})
    posted = rated_match(players)
    mid = posted["match_id"]
    await s.service.submit_match(posted)
    assert await drain(s, [mid]) == {mid: "completed"}
    log = await s.sagas.log(mid)
    names = [type(e.event).__name__ for e in log]
    assert "RetryScheduled" in names
    applied = Counter(e.event.player_id for e in log if type(e.event).__name__ == "PlayerApplied")  # type: ignore[union-attr]
    assert applied == dict.fromkeys(players, 1)
    logged = await s.sagas.deltas(mid)
    for pid in players:
        assert await rating(s, pid) == start_plus(logged[pid])


async def test_a_voided_match_reverts_exactly_its_rating_change() -> None:
    s = stack()
    a, b, c = some_players(3)
    kept, voided = rated_match([a, b]), rated_match([a, c])
    for m in (kept, voided):
        await s.service.submit_match(m)
    ids = [kept["match_id"], voided["match_id"]]
    assert await drain(s, ids) == dict.fromkeys(ids, "completed")
    assert (await s.runner.handle(VoidMatch(voided["match_id"], "cheating"))).state == (
        "compensated"
    )
    logged = await s.sagas.deltas(kept["match_id"])
    assert await rating(s, a) == start_plus(logged[a])  # the kept match's change only
    assert await rating(s, b) == start_plus(logged[b])
    assert await rating(s, c) is None  # as if c had never played it


async def test_concurrent_deliveries_of_one_rated_start_log_one_change_each() -> None:
    s = stack(delay_s=0.01)
    players = some_players(6)
    posted = rated_match(players)
    mid = posted["match_id"]
    await s.service.submit_match(posted)
    replies = await asyncio.gather(*(s.runner.handle(StartSaga(mid)) for _ in range(4)))
    assert {r.state for r in replies} == {"completed"}
    names = [type(e.event).__name__ for e in await s.sagas.log(mid)]
    assert names.count("SagaStarted") == 1 and names.count("PlayerApplied") == len(players)
    logged = await s.sagas.deltas(mid)
    for pid in players:
        assert await rating(s, pid) == start_plus(logged[pid])


@dataclass
class UnreadableStore(FlakyPlayerStore):
    """Loads of some players fail a number of times: their ratings cannot be read."""

    unreadable: dict[str, int] = field(default_factory=dict)

    async def load(self, player_id: str) -> PlayerSnapshot:
        if self.unreadable.get(player_id, 0) > 0:
            self.unreadable[player_id] -= 1
            raise StorageUnavailable(f"injected: {player_id} cannot be read")
        return await super().load(player_id)


async def test_a_player_whose_rating_cannot_be_read_is_played_but_not_rated() -> None:
    players = some_players(4)
    victim = players[2]
    store = UnreadableStore(InMemoryPlayerStore())
    # Past the grain's two in-process attempts, so the read fails; the apply's load works.
    store.unreadable = {victim: 2}
    s = stack_over(store, blind_insert=False)  # read, not guessed new
    posted = rated_match(players)
    mid = posted["match_id"]
    await s.service.submit_match(posted)
    assert await drain(s, [mid]) == {mid: "completed"}
    logged = await s.sagas.deltas(mid)
    assert logged[victim].rating is None
    assert await rating(s, victim) is None
    assert (await s.runner.grains.service_record(victim)).counters["matches"] == 1
    for pid in players:
        if pid != victim:
            assert await rating(s, pid) == start_plus(logged[pid])
