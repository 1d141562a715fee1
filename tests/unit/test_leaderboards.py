"""Leaderboards: a board equals the one recomputed by sorting, pages cover it while it
changes, ties, removal, snapshots, standings, and a record's values on its mode's boards."""

from __future__ import annotations

import base64
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.leaderboards import (
    MAX_PAGE_LIMIT,
    STATS,
    Board,
    BoardUpdate,
    Entry,
    InvalidContinuation,
    ModeBoards,
    board_values,
    record_updates,
)
from app.domain.ratings import SkillRating
from app.domain.stats import OTHER, ServiceRecord

PLAYERS = st.sampled_from([f"p-{i}" for i in range(12)])
VALUES = st.integers(min_value=-3, max_value=6).map(float)  # few values: many ties
OPS = st.lists(st.tuples(PLAYERS, st.none() | VALUES), max_size=60)


def recomputed(values: dict[str, float]) -> list[Entry]:
    """The board by sorting, with competition ranks counted by hand."""
    ordered = sorted(values.items(), key=lambda pv: (-pv[1], pv[0]))
    return [Entry(1 + sum(v > value for v in values.values()), p, value) for p, value in ordered]


def board_after(ops: list[tuple[str, float | None]]) -> tuple[Board, dict[str, float]]:
    board, expected = Board("kills"), {}
    for player, value in ops:
        if value is None:
            board.remove(player)
            expected.pop(player, None)
        else:
            board.set(player, value)
            expected[player] = value
    return board, expected


def every_page(board: Board, limit: int) -> list[Entry]:
    served, token = board.page(limit)
    while token is not None:
        more, token = board.page(limit, token)
        served += more
    return served


@settings(max_examples=200, deadline=None)
@given(OPS, st.integers(min_value=1, max_value=7))
def test_a_board_equals_its_recomputation_by_sorting(ops: list, limit: int) -> None:
    board, expected = board_after(ops)
    assert board.ranked() == recomputed(expected)
    assert every_page(board, limit) == recomputed(expected)
    assert board.size == len(expected)


@settings(max_examples=200, deadline=None)
@given(OPS, OPS, st.integers(min_value=1, max_value=5), st.randoms(use_true_random=False))
def test_paging_serves_every_unchanged_player_once_while_others_move(
    ops: list, moves: list, limit: int, rand: random.Random
) -> None:
    board, _ = board_after(ops)
    moved: set[str] = set()
    served, token = board.page(limit)
    pending = list(moves)
    while token is not None:
        for player, value in pending[: rand.randint(0, 3)]:  # the board changes between pages
            moved.add(player)
            board.remove(player) if value is None else board.set(player, value)
        pending = pending[3:]
        more, token = board.page(limit, token)
        served += more
    unchanged = [e.player_id for e in served if e.player_id not in moved]
    assert sorted(unchanged) == sorted(set(board.players()) - moved)  # each exactly once
    keys = [(-e.value, e.player_id) for e in served if e.player_id not in moved]
    assert keys == sorted(keys)


def test_ties_share_a_rank_and_are_listed_by_player_id() -> None:
    board = Board("wins")
    for player, value in [("b", 5.0), ("a", 5.0), ("c", 9.0), ("d", 1.0)]:
        board.set(player, value)
    assert board.ranked() == [
        Entry(1, "c", 9.0),
        Entry(2, "a", 5.0),
        Entry(2, "b", 5.0),
        Entry(4, "d", 1.0),
    ]
    # A page that starts inside a tie still gives it the shared rank.
    page, _ = board.page(2, board.page(2)[1])
    assert page == [Entry(2, "b", 5.0), Entry(4, "d", 1.0)]


def test_removal_and_a_new_value_move_the_player() -> None:
    board = Board("kills")
    board.set("a", 3.0)
    board.set("b", 2.0)
    assert board.set("b", 4.0) and not board.set("b", 4.0)  # an unchanged value: no change
    assert [e.player_id for e in board.ranked()] == ["b", "a"]
    assert board.remove("b") and not board.remove("b")
    assert board.ranked() == [Entry(1, "a", 3.0)] and board.standing("b") is None


def test_percentile_is_the_share_of_players_strictly_below() -> None:
    board = Board("kd")
    for i in range(1000):
        board.set(f"p-{i:04}", float(i))
    board.set("twin", 500.0)  # 1,001 players; twin ties p-0500
    top, bottom = board.standing("p-0999"), board.standing("p-0000")
    assert top is not None and (top.rank, top.percentile) == (1, round(1000 / 1001 * 100, 1))
    assert bottom is not None and (bottom.rank, bottom.percentile) == (1001, 0.0)
    twin, other = board.standing("twin"), board.standing("p-0500")
    assert twin == other and twin is not None
    assert (twin.rank, twin.percentile, twin.value) == (500, round(500 / 1001 * 100, 1), 500.0)
    alone = Board("kd")
    alone.set("x", 1.0)
    assert alone.standing("x") is not None and alone.standing("x").percentile == 0.0  # type: ignore[union-attr]


def test_a_continuation_is_opaque_urlsafe_and_validated() -> None:
    board = Board("rating")
    for i in range(5):
        board.set(f"player/{i}?", i + 0.5)
    _, token = board.page(2)
    assert token is not None and set(token) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    with pytest.raises(InvalidContinuation, match="'rating' board, not of 'kills'"):
        Board("kills").page(2, token)
    forged = base64.urlsafe_b64encode(json.dumps(["rating", "x", "p"]).encode()).decode()
    for bad in ("", "not a token", "%%%", token[:-3], forged):
        with pytest.raises(InvalidContinuation):
            board.page(2, bad)


def test_a_page_limit_is_bounded_and_the_end_has_no_token() -> None:
    board = Board("wins")
    board.set("a", 1.0)
    for limit in (0, MAX_PAGE_LIMIT + 1):
        with pytest.raises(ValueError, match="limit"):
            board.page(limit)
    assert board.page(1) == ([Entry(1, "a", 1.0)], None)
    assert Board("wins").page(5) == ([], None)
    with pytest.raises(ValueError, match="finite"):
        board.set("b", float("nan"))


@settings(max_examples=100, deadline=None)
@given(OPS)
def test_a_snapshot_round_trips_through_json(ops: list) -> None:
    modes = ModeBoards("slayer")
    for player, value in ops:
        values = None if value is None else {"kills": value, "kd": value / 2}
        modes.apply(BoardUpdate("slayer", player, values))
    again = ModeBoards.from_snapshot(json.loads(json.dumps(modes.to_snapshot())))
    for stat in STATS:
        assert again.boards[stat].ranked() == modes.boards[stat].ranked()
    assert again.to_snapshot() == modes.to_snapshot()


def test_an_update_sets_every_board_of_its_mode_and_none_takes_the_player_off() -> None:
    modes = ModeBoards("slayer")
    values = {"rating": 12.5, "kills": 30.0, "wins": 2.0, "kd": 1.5}
    assert modes.apply(BoardUpdate("slayer", "p", values))
    assert not modes.apply(BoardUpdate("slayer", "p", values))  # twice: harmless
    assert {s: st.value for s, st in modes.standing("p").items()} == values
    assert modes.apply(BoardUpdate("slayer", "p", {"kills": 31.0, "wins": 2.0, "kd": 1.5}))
    assert set(modes.standing("p")) == {"kills", "wins", "kd"}  # no longer rated
    assert modes.apply(BoardUpdate("slayer", "p", None))
    assert modes.standing("p") == {} and modes.players() == set()
    with pytest.raises(ValueError, match="'ctf' offered to 'slayer'"):
        modes.apply(BoardUpdate("ctf", "p", None))


def test_board_values_read_the_record_of_the_mode() -> None:
    rating = SkillRating(mu=30.0, sigma=5.0, matches=3)
    counters = {"matches": 3, "wins": 2, "kills": 30, "deaths": 20}
    record = ServiceRecord(
        "p",
        modes={"slayer": counters, "ctf": {**counters, "matches": 0}, OTHER: counters},
        ratings={"slayer": rating, OTHER: rating},
    )
    assert board_values(record, "slayer") == {
        "rating": rating.skill,
        "kills": 30.0,
        "wins": 2.0,
        "kd": 1.5,
    }
    assert board_values(record, "ctf") is None  # its only match was voided
    assert board_values(record, OTHER) is None  # the overflow bucket is no mode
    assert board_values(record, "oddball") is None
    unrated = ServiceRecord("p", modes={"slayer": counters})
    assert "rating" not in (board_values(unrated, "slayer") or {})
    assert [u.mode for u in record_updates(record)] == ["ctf", "slayer"]
