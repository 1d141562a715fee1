"""Skill ratings: the domain's arithmetic against openskill's own, and how a match becomes
the sides and ranks it rates."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from openskill.models import PlackettLuce

from app.domain.aggregation import aggregate
from app.domain.ratings import RatingChange, RatingDelta, SkillRating, rate, rate_match, sides
from app.domain.stats import ServiceRecord, StatDelta, apply_delta, public_record, revert_delta
from app.domain.validation import parse_match


def a_match(lines: list[dict[str, Any]], match_id: str = "m-1") -> Any:
    body = {
        "match_id": match_id,
        "mode": "slayer",
        "map": "haven",
        "started_at": "2026-12-01T20:00:00Z",
        "ended_at": "2026-12-01T20:10:00Z",
        "players": lines,
    }
    return parse_match(body, now=None)


def line(pid: str, outcome: str, team: str | None = None, score: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"player_id": pid, "outcome": outcome, "score": score}
    if team is not None:
        out["team"] = team
    return out


def test_a_one_on_one_series_matches_openskill_computing_it_in_the_same_order() -> None:
    rng = random.Random(5)
    model = PlackettLuce()
    theirs = {"a": model.rating(), "b": model.rating()}
    ours = {"a": SkillRating(), "b": SkillRating()}
    for n in range(30):
        winner, loser = ("a", "b") if rng.random() < 0.7 else ("b", "a")
        [[w], [lo]] = model.rate([[theirs[winner]], [theirs[loser]]], ranks=[0, 1])
        theirs[winner], theirs[loser] = w, lo
        match = a_match([line(winner, "win"), line(loser, "loss")], f"m-{n}")
        teams, ranks = sides(match)
        for pid, delta in rate(teams, ranks, ours).items():
            ours[pid] = ours[pid].plus(delta)
    # Within a ten-thousandth: our ratings are kept in millionths, rounded at every step.
    for pid in ("a", "b"):
        assert ours[pid].mu == pytest.approx(theirs[pid].mu, abs=1e-4)
        assert ours[pid].sigma == pytest.approx(theirs[pid].sigma, abs=1e-4)
        assert ours[pid].matches == 30
    assert ours["a"].skill > ours["b"].skill  # a won about 70% of them


def test_free_for_all_ranks_each_player_by_outcome_then_score() -> None:
    lines = [line(f"p{i}", "win" if i == 0 else "loss", score=100 - 10 * i) for i in range(8)]
    lines[7]["outcome"] = "dnf"
    lines[5]["score"] = lines[4]["score"]  # p4 and p5 tie on score: they share a rank
    teams, ranks = sides(a_match(list(reversed(lines))))
    rank_of = {team[0]: rank for team, rank in zip(teams, ranks, strict=True)}
    assert rank_of == {"p0": 0, "p1": 1, "p2": 2, "p3": 3, "p4": 4, "p5": 4, "p6": 6, "p7": 7}
    assert ranks == sorted(ranks)  # sides come best first
    deltas = rate(teams, ranks, {})
    assert [deltas[f"p{i}"].mu > 0 for i in (0, 7)] == [True, False]
    assert deltas["p4"] == deltas["p5"]  # same rank, same start: the same change
    # Each rank ahead of the next gains more (or loses less).
    gains = [deltas[f"p{i}"].mu for i in (0, 1, 2, 3, 4, 6, 7)]
    assert gains == sorted(gains, reverse=True)


def test_uneven_teams_are_rated_as_openskill_rates_them() -> None:
    current = {"r1": SkillRating(30.0, 5.0, 12), "b1": SkillRating(20.0, 7.0, 3)}
    lines = [line(p, "win", "red") for p in ("r1", "r2", "r3", "r4")]
    lines += [line(p, "loss", "blue") for p in ("b1", "b2", "b3")]
    teams, ranks = sides(a_match(lines))
    assert teams == [["r1", "r2", "r3", "r4"], ["b1", "b2", "b3"]]
    assert ranks == [0, 1]
    deltas = rate(teams, ranks, current)
    model = PlackettLuce()
    red = [model.rating(mu=30.0, sigma=5.0)] + [model.rating() for _ in range(3)]
    blue = [model.rating(mu=20.0, sigma=7.0)] + [model.rating() for _ in range(2)]
    new_red, new_blue = model.rate([red, blue], ranks=[0, 1])
    for pid, old, new in zip(["r1", "r2", "r3", "r4"], red, new_red, strict=True):
        assert deltas[pid].mu == pytest.approx(new.mu - old.mu, abs=1e-6)
    for pid, old, new in zip(["b1", "b2", "b3"], blue, new_blue, strict=True):
        assert deltas[pid].sigma == pytest.approx(new.sigma - old.sigma, abs=1e-6)


def test_a_tie_is_one_shared_rank() -> None:
    lines = [line("a", "tie", "red"), line("b", "tie", "blue")]
    teams, ranks = sides(a_match(lines))
    assert ranks == [0, 0]
    deltas = rate(teams, ranks, {})
    assert deltas["a"].mu == pytest.approx(0.0, abs=1e-9)
    assert deltas["a"].sigma < 0  # still learnt something: less uncertain


def test_a_delta_taken_back_restores_the_rating_it_was_applied_to() -> None:
    before = SkillRating(27.5, 6.25, 4)
    delta = RatingDelta(1.5, -0.25)
    assert before.plus(delta) == SkillRating(29.0, 6.0, 5)
    assert before.plus(delta).minus(delta) == before


@pytest.mark.parametrize(
    ("teams", "ranks"), [([["a"]], [0]), ([["a"], ["b"]], [0]), ([], [])], ids=str
)
def test_a_match_that_cannot_be_rated_is_refused(teams: list[list[str]], ranks: list[int]) -> None:
    with pytest.raises(ValueError):
        rate(teams, ranks, {})


def test_deltas_applied_in_any_order_and_taken_back_give_back_the_exact_rating() -> None:
    rng = random.Random(11)
    start = SkillRating()
    deltas = [RatingDelta(rng.uniform(-3, 3), rng.uniform(-0.4, 0.0)) for _ in range(50)]
    deltas = [RatingDelta(round(d.mu, 6), round(d.sigma, 6)) for d in deltas]
    forward = start
    for d in deltas:
        forward = forward.plus(d)
    shuffled = start
    for d in rng.sample(deltas, len(deltas)):
        shuffled = shuffled.plus(d)
    assert forward == shuffled  # exact: fixed point, not float noise
    back = forward
    for d in rng.sample(deltas, len(deltas)):
        back = back.minus(d)
    assert back == start


def test_a_rated_match_changes_the_record_and_voiding_it_leaves_the_record_it_found() -> None:
    match = a_match([line("a", "win"), line("b", "loss")])
    changes = rate_match(match, {"a": SkillRating(), "b": SkillRating()})
    deltas = aggregate(match)
    rated = {pid: replace(d, rating=changes[pid]) for pid, d in deltas.items()}
    assert StatDelta.from_dict(rated["a"].to_dict()) == rated["a"]
    record = apply_delta(ServiceRecord("a"), rated["a"])
    assert record.ratings["slayer"] == changes["a"].after
    assert record.ratings["slayer"].matches == 1 and record.ratings["slayer"].skill > 0
    assert ServiceRecord.from_dict(record.to_dict()) == record
    assert public_record(record)["modes"]["slayer"]["rating"]["matches"] == 1
    assert revert_delta(record, rated["a"]).ratings == {}


def test_an_unreadable_player_gets_no_change_and_is_rated_against_as_a_new_player() -> None:
    match = a_match([line("a", "win"), line("b", "loss")])
    strong = SkillRating(mu=40.0, sigma=2.0, matches=80)
    changes = rate_match(match, {"a": SkillRating(), "b": strong}, unreadable={"b"})
    assert set(changes) == {"a"}
    assert changes["a"] == rate_match(match, {"a": SkillRating()})["a"]  # b counted as new


def test_a_match_of_one_side_rates_nobody() -> None:
    match = a_match([line("a", "win", team="red"), line("b", "win", team="red")])
    assert rate_match(match, {}) == {}


def test_a_guessed_change_says_so_and_an_unguessed_one_reads_as_before() -> None:
    change = RatingChange(SkillRating(), RatingDelta(1.5, -0.25))
    assert "guessed" not in change.to_dict()  # rows logged before guesses read the same
    guessed = replace(change, guessed=True)
    assert guessed.to_dict()["guessed"] is True
    assert RatingChange.from_dict(guessed.to_dict()) == guessed
    assert RatingChange.from_dict(change.to_dict()) == change


def test_rate_match_rates_a_guessed_player_from_the_default_rating() -> None:
    match = a_match([line("a", "win"), line("b", "loss")])
    strong = SkillRating(40.0, 2.0, 30)
    read = rate_match(match, {"a": SkillRating(), "b": SkillRating()})
    guessed = rate_match(match, {"a": strong, "b": SkillRating()}, guessed=["a"])
    assert guessed["a"].guessed and not guessed["b"].guessed
    assert guessed["a"].before == SkillRating()  # not the rating it was handed
    assert {p: c.delta for p, c in guessed.items()} == {p: c.delta for p, c in read.items()}
