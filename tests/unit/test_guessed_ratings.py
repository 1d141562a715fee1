"""A player the shard guesses is new is rated without reading them (the default rating,
the change marked ``guessed``). Their grain applies that change only if the record has no
rating in the mode; otherwise it refuses it, and the saga rates the player again from the
rating they have, logs that change and applies it: the log, the record, the match page
and a void all agree, and no player ever plays a rated match unrated for a wrong guess."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from actors.grains import PlayerGrainHost
from app.application.commands import StartSaga, VoidMatch
from app.application.ports import PlayerSnapshot, PlayerUpdate
from app.application.runner import LocalSagaRunner
from app.domain.ratings import SkillRating, rate, sides
from app.domain.saga import Action
from app.domain.stats import ServiceRecord
from app.domain.validation import parse_match
from storage.memory import InMemoryPlayerStore
from tests.support.faults import FlakyPlayerStore
from tests.unit.test_coordinator import FAST, Stack, drain, stack_over
from tests.unit.test_rated_sagas import rated_match, rating, some_players, start_plus


@dataclass
class CountingStore(FlakyPlayerStore):
    """Counts the loads of each player (a rating read of a cold player is one)."""

    loads: Counter[str] = field(default_factory=Counter)

    async def load(self, player_id: str) -> PlayerSnapshot:
        self.loads[player_id] += 1
        return await super().load(player_id)


def counting_stack() -> tuple[Stack, CountingStore]:
    store = CountingStore(InMemoryPlayerStore())
    return stack_over(store), store


def host(s: Stack) -> PlayerGrainHost:
    grains = s.runner.grains
    assert isinstance(grains, PlayerGrainHost)
    return grains


async def play(s: Stack, players: list[str]) -> str:
    posted = rated_match(players)
    mid = str(posted["match_id"])
    await s.service.submit_match(posted)
    assert await drain(s, [mid]) == {mid: "completed"}
    return mid


async def stored(s: Stack, player_id: str) -> ServiceRecord:
    return (await s.store.load(player_id)).record


async def test_new_players_are_rated_without_any_read_of_their_records() -> None:
    s, store = counting_stack()
    players = some_players(4)
    mid = await play(s, players)
    assert sum(store.loads[p] for p in players) == 0  # no rating read, no activation read
    assert host(s).counters.guessed_ratings == 4
    assert host(s).counters.guessed_wrong == 0
    logged = await s.sagas.deltas(mid)
    for pid in players:
        change = logged[pid].rating
        assert change is not None and change.guessed and change.before == SkillRating()
        assert await rating(s, pid) == change.after == start_plus(logged[pid])


async def test_a_new_players_guessed_change_survives_a_lost_answer() -> None:
    s, store = counting_stack()
    players = some_players(2)
    # The first write lands and its answer is lost: the retry finds the match applied
    # (the guess was right) and the saga keeps the change it logged.
    store.lost_answers = {players[0]: 1}
    mid = await play(s, players)
    logged = await s.sagas.deltas(mid)
    assert logged[players[0]].rating is not None
    assert await rating(s, players[0]) == start_plus(logged[players[0]])


async def known_player_guessed_new(s: Stack, store: CountingStore, concurrent: bool) -> None:
    known, *others = some_players(4)
    first = await play(s, [known, others[0]])
    before = await stored(s, known)
    has = before.ratings["slayer"]
    assert has.matches == 1
    host(s).deactivate([known])  # cold again, and every cold player so far was new
    posted = rated_match([known, *others])
    second = str(posted["match_id"])
    await s.service.submit_match(posted)
    if concurrent:  # two coordinators of one start, both refused: one change is logged
        runs = [s.runner.handle(StartSaga(second)) for _ in range(2)]
        assert {r.state for r in await asyncio.gather(*runs)} == {"completed"}
    else:
        assert await drain(s, [second]) == {second: "completed"}
    assert host(s).counters.guessed_wrong >= 1
    logged = await s.sagas.deltas(second)
    change = logged[known].rating
    # Rated again from the rating it has, against the others as they were rated.
    assert change is not None and not change.guessed and change.before == has
    match = parse_match(posted, now=None)
    teams, ranks = sides(match)
    current = {pid: d.rating.before for pid, d in logged.items() if d.rating is not None}
    assert change.delta == rate(teams, ranks, current)[known]
    # The others keep the changes logged first: one read (active since the first
    # match), two guessed new (and they were).
    read = logged[others[0]].rating
    assert read is not None and not read.guessed and read.before.matches == 1
    for pid in others[1:]:
        other = logged[pid].rating
        assert other is not None and other.guessed and other.before == SkillRating()
    first_logged = await s.sagas.deltas(first)
    assert await rating(s, known) == start_plus(first_logged[known], logged[known])
    after = await stored(s, known)
    assert after.counters["matches"] == 2
    detail = await s.service.match(second)
    assert detail.body is not None
    shown = {line["player_id"]: line["rating"] for line in detail.body["players"]}
    assert shown[known]["before"] == has.public()
    assert (await s.runner.handle(VoidMatch(second, "cheating"))).state == "compensated"
    assert await stored(s, known) == before


async def test_a_known_player_guessed_new_is_rated_again_from_the_rating_it_has() -> None:
    s, store = counting_stack()
    await known_player_guessed_new(s, store, concurrent=False)


async def test_two_coordinators_rating_a_known_player_again_log_one_change() -> None:
    s, store = counting_stack()
    await known_player_guessed_new(s, store, concurrent=True)


async def test_a_known_player_guessed_new_whose_new_change_is_answered_late() -> None:
    s, store = counting_stack()
    # The refusal writes nothing; the change computed again lands and its answer is
    # lost: the retry finds it applied, and the log keeps it.
    known, a, b = some_players(3)
    await play(s, [known, a])
    host(s).deactivate([known])
    store.lost_answers = {known: 1}
    mid = await play(s, [known, b])
    logged = await s.sagas.deltas(mid)
    change = logged[known].rating
    assert change is not None and not change.guessed
    assert (await stored(s, known)).ratings["slayer"] == change.after


async def test_a_known_player_guessed_known_is_read_and_rated() -> None:
    s, store = counting_stack()
    known, a, b, c = some_players(4)
    first = await play(s, [known, a])
    host(s).deactivate([known])
    guess = host(s)._turns._guess  # the host has seen only known players of late
    for _ in range(64):
        guess.observe(False)
    loads = store.loads[known]
    second = await play(s, [known, b, c])
    assert store.loads[known] == loads + 1  # read once: the rating read activated it
    logged, first_logged = await s.sagas.deltas(second), await s.sagas.deltas(first)
    change = logged[known].rating
    assert change is not None and not change.guessed
    assert change.before == start_plus(first_logged[known])  # the rating it has
    assert await rating(s, known) == start_plus(first_logged[known], logged[known])
    assert host(s).counters.guessed_wrong == 0


async def test_a_guessed_change_replayed_after_the_player_was_rated_again_is_found_applied() -> (
    None
):
    s, store = counting_stack()
    player, a, b = some_players(3)
    first = await play(s, [player, a])  # new: guessed, and rightly
    guessed = (await s.sagas.deltas(first))[player]
    assert guessed.rating is not None and guessed.rating.guessed
    await play(s, [player, b])  # now the player has more than that match's rating
    # A replay of the first match's logged (guessed) change, by a host with a fresh
    # guess, say after a restart: not refused (its history row exists), found applied.
    restarted = PlayerGrainHost(store)
    (result,) = await restarted.update([PlayerUpdate(Action.APPLY, guessed)])
    assert result.ok and not result.changed and result.rerate is None
    assert restarted.counters.guessed_wrong == 0


class BothReadFirst:
    """Grains whose updates wait until two sagas have read their ratings: a popular new
    player's two matches both rated before either lands."""

    def __init__(self, inner: PlayerGrainHost) -> None:
        self.inner = inner
        self.reads = 0
        self.both = asyncio.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def ratings(self, mode: str, player_ids: list[str]) -> object:
        found = await self.inner.ratings(mode, player_ids)
        self.reads += 1
        if self.reads == 2:
            self.both.set()
        return found

    async def update(self, updates: list[PlayerUpdate]) -> object:
        await self.both.wait()
        return await self.inner.update(updates)


async def test_a_new_players_concurrent_matches_all_keep_their_guessed_changes() -> None:
    s, _ = counting_stack()
    star, a, b = some_players(3)
    posted = [rated_match([star, a]), rated_match([star, b])]
    for m in posted:
        await s.service.submit_match(m)
    gated = LocalSagaRunner(s.sagas, s.runner.archive, BothReadFirst(host(s)), FAST)  # type: ignore[arg-type]
    runs = [gated.handle(StartSaga(str(m["match_id"]))) for m in posted]
    assert {r.state for r in await asyncio.gather(*runs)} == {"completed"}
    # Both read the star as new, and it was: the second to land is not refused although
    # the record has a rating by then (its activation created the record).
    assert host(s).counters.guessed_wrong == 0
    logged = [(await s.sagas.deltas(str(m["match_id"])))[star] for m in posted]
    for d in logged:
        assert d.rating is not None and d.rating.guessed
    assert await rating(s, star) == start_plus(*logged)
