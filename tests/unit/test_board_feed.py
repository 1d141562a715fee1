"""The player grains feed the leaderboards: by the time a host answers an update, the
players' new values are on the boards; a voided match takes them back; a match found
already applied is offered from the record read afresh; an offer the boards refuse is
kept and sent later."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from actors.board_feed import BoardFeed
from actors.grains import GrainSettings, PlayerGrainHost
from app.application.boards import BoardHost
from app.application.ports import PlayerUpdate, UpdateResult
from app.domain.errors import PoolUnavailable
from app.domain.leaderboards import BoardUpdate
from app.domain.model import Outcome
from app.domain.ratings import RatingChange, RatingDelta, SkillRating
from app.domain.saga import Action
from app.domain.stats import ServiceRecord, StatDelta, apply_delta, delta_counters
from storage.memory import InMemoryPlayerStore
from storage.memory_boards import InMemoryBoardSnapshots


def delta(player: str, match: str, kills: int, rated: bool = True) -> StatDelta:
    change = RatingChange(SkillRating(), RatingDelta(2.0, -0.5)) if rated else None
    return StatDelta(
        match_id=match,
        player_id=player,
        mode="slayer",
        map="haven",
        ended_at=datetime(2026, 12, 1, tzinfo=UTC),
        outcome=Outcome.WIN,
        team="red",
        counters=delta_counters(Outcome.WIN, {"kills": kills, "deaths": 2}),
        rating=change,
    )


def host_over(store: InMemoryPlayerStore, boards: object) -> PlayerGrainHost:
    settings = GrainSettings(storage_attempts=2, storage_backoff_s=0.001)
    return PlayerGrainHost(store, settings, boards=boards)  # type: ignore[arg-type]


async def kills_board(boards: BoardHost) -> list[tuple[str, float]]:
    page = await boards.page("slayer", "kills", 100)
    return [(e.player_id, e.value) for e in page.entries]


async def test_an_answered_update_has_its_players_on_the_boards() -> None:
    boards = BoardHost(InMemoryBoardSnapshots())
    host = host_over(InMemoryPlayerStore(), boards)
    run = uuid.uuid4().hex[:6]
    a, b = f"a{run}", f"b{run}"
    results = await host.update(
        [
            PlayerUpdate(Action.APPLY, delta(a, "m1", 7)),
            PlayerUpdate(Action.APPLY, delta(b, "m1", 3)),
        ]
    )
    assert all(r.ok for r in results)
    assert await kills_board(boards) == [(a, 7.0), (b, 3.0)]  # no wait: offered before answering
    standing = await boards.standing("slayer", a)
    assert standing["rating"].value == round(SkillRating().plus(RatingDelta(2.0, -0.5)).skill, 6)
    # The player's only match voided: off every board of the mode.
    await host.update([PlayerUpdate(Action.COMPENSATE, delta(a, "m1", 7))])
    assert await kills_board(boards) == [(b, 3.0)]
    assert await boards.standing("slayer", a) == {}


async def test_a_match_found_already_applied_is_offered_from_the_record() -> None:
    store = InMemoryPlayerStore()
    run = uuid.uuid4().hex[:6]
    a = f"a{run}"
    first = host_over(store, BoardHost(InMemoryBoardSnapshots()))
    await first.update([PlayerUpdate(Action.APPLY, delta(a, "m1", 5))])
    # An attempt whose answer (and offer) was lost: another host finds the match applied.
    boards = BoardHost(InMemoryBoardSnapshots())
    again = host_over(store, boards)
    [result] = await again.update([PlayerUpdate(Action.APPLY, delta(a, "m1", 5))])
    assert result.ok and not result.changed
    assert await kills_board(boards) == [(a, 5.0)]


class Refusing:
    """Leaderboards that refuse offers until told otherwise, then keep what they get."""

    def __init__(self) -> None:
        self.up = False
        self.got: list[BoardUpdate] = []

    async def offer(self, updates: Sequence[BoardUpdate]) -> None:
        if not self.up:
            raise PoolUnavailable("no board actor yet")
        self.got += updates


async def test_an_offer_the_boards_refuse_is_kept_and_sent_later() -> None:
    boards = Refusing()
    host = host_over(InMemoryPlayerStore(), boards)
    assert host.feed is not None
    host.feed._retry_interval_s = 0.05
    run = uuid.uuid4().hex[:6]
    a = f"a{run}"
    [result] = await host.update([PlayerUpdate(Action.APPLY, delta(a, "m1", 4, rated=False))])
    assert result.ok and boards.got == []  # the update itself is not failed by the boards
    boards.up = True
    for _ in range(100):
        if boards.got:
            break
        await asyncio.sleep(0.02)
    assert [(u.player_id, u.values) for u in boards.got] == [
        (a, {"kills": 4.0, "wins": 1.0, "kd": 2.0})
    ]
    await host.feed.close()


async def test_a_slow_read_never_offers_older_values_after_newer_ones() -> None:
    run = uuid.uuid4().hex[:6]
    a = f"a{run}"
    old = apply_delta(ServiceRecord(a), delta(a, "m1", 5, rated=False))
    new = apply_delta(old, delta(a, "m2", 9, rated=False))
    released = asyncio.Event()

    async def slow_read(player_id: str) -> ServiceRecord:
        await released.wait()  # a read through storage faults, say
        return old  # what storage held when the read began

    boards = Refusing()
    boards.up = True
    feed = BoardFeed(boards, slow_read)  # type: ignore[arg-type]
    found = [PlayerUpdate(Action.APPLY, delta(a, "m1", 5, rated=False))]
    feed.touched(found, [UpdateResult(a, "m1", True, False)], None)  # found applied: read
    reading = asyncio.create_task(feed.flush())
    await asyncio.sleep(0.01)
    later = [PlayerUpdate(Action.APPLY, delta(a, "m2", 9, rated=False))]
    feed.touched(later, [UpdateResult(a, "m2", True, True)], new)  # the next match's turn
    offering = asyncio.create_task(feed.flush())
    await asyncio.sleep(0.01)
    released.set()
    await asyncio.gather(reading, offering)
    assert boards.got[-1].values is not None and boards.got[-1].values["kills"] == 14.0


async def test_the_feed_reads_a_moved_player_without_activating_a_grain() -> None:
    boards = BoardHost(InMemoryBoardSnapshots())
    host = host_over(InMemoryPlayerStore(), boards)
    assert host.feed is not None
    run = uuid.uuid4().hex[:6]
    a = f"a{run}"
    apply = [PlayerUpdate(Action.APPLY, delta(a, "m1", 6))]
    await host.update(apply)
    host.retire(lambda pid: False)  # a resize moved the player to another shard
    assert host.players() == []
    # A read the feed still owes (a retry after the move): from storage, not a grain here,
    # which would serve the moved player's record stale if the player came back.
    host.feed.touched(apply, [UpdateResult(a, "m1", True, False)], None)
    await host.feed.flush()
    assert host.players() == []
    assert await kills_board(boards) == [(a, 6.0)]
