"""Service records: derived ratios, the public shape, storage round trips, played dates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.model import Outcome
from app.domain.stats import (
    RECORD_COUNTERS,
    ServiceRecord,
    StatDelta,
    apply_delta,
    delta_counters,
    public_record,
    ratios,
    revert_delta,
    sum_deltas,
)

DAY = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


def delta(
    match_id: str = "m-1",
    ended_at: datetime = DAY,
    mode: str = "slayer",
    outcome: Outcome = Outcome.WIN,
    **reported: int,
) -> StatDelta:
    return StatDelta(
        match_id=match_id,
        player_id="p-1",
        mode=mode,
        map="haven",
        ended_at=ended_at,
        outcome=outcome,
        team="red",
        counters=delta_counters(outcome, {"kills": 12, "deaths": 7, "assists": 3, **reported}),
        medals={"double_kill": 2, "killjoy": 1},
        weapons={"battle_rifle": {"kills": 8, "headshots": 4}},
    )


# ---- ratios ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kills", "deaths", "kd"), [(12, 0, 12.0), (12, 1, 12.0), (12, 8, 1.5), (0, 0, 0.0)]
)
def test_kd_divides_by_at_least_one_death(kills: int, deaths: int, kd: float) -> None:
    assert ratios({"kills": kills, "deaths": deaths})["kd"] == kd


@pytest.mark.parametrize(
    ("kills", "assists", "deaths", "kda"),
    [(12, 3, 7, 6.0), (0, 0, 5, -5.0), (10, 1, 0, 10.3333), (3, 9, 6, 0.0)],
)
def test_kda_is_halos_kills_plus_a_third_of_assists_minus_deaths(
    kills: int, assists: int, deaths: int, kda: float
) -> None:
    assert ratios({"kills": kills, "assists": assists, "deaths": deaths})["kda"] == kda


@pytest.mark.parametrize(
    ("hit", "fired", "accuracy"), [(120, 300, 0.4), (0, 0, 0.0), (1, 3, 0.3333), (5, 5, 1.0)]
)
def test_accuracy_is_hits_over_shots_and_zero_without_shots(
    hit: int, fired: int, accuracy: float
) -> None:
    assert ratios({"shots_hit": hit, "shots_fired": fired})["accuracy"] == accuracy


@pytest.mark.parametrize(("wins", "matches", "rate"), [(3, 4, 0.75), (0, 0, 0.0), (0, 2, 0.0)])
def test_win_rate_is_wins_over_matches(wins: int, matches: int, rate: float) -> None:
    assert ratios({"wins": wins, "matches": matches})["win_rate"] == rate


# ---- the public record -----------------------------------------------------------------

PUBLIC_FIELDS = {
    "player_id",
    "matches",
    "wins",
    "losses",
    "ties",
    "dnf",
    "kills",
    "deaths",
    "assists",
    "headshots",
    "shots_fired",
    "shots_hit",
    "damage_dealt",
    "score",
    "time_played_s",
    "kd",
    "kda",
    "accuracy",
    "medals",
    "weapons",
    "modes",
    "first_played",
    "last_played",
}


def test_public_record_of_a_new_player_has_every_field_of_design_5() -> None:
    out = public_record(ServiceRecord("p-1"))
    assert set(out) >= PUBLIC_FIELDS
    assert out["player_id"] == "p-1"
    assert all(out[name] == 0 for name in RECORD_COUNTERS)
    assert (out["kd"], out["kda"], out["accuracy"]) == (0.0, 0.0, 0.0)
    assert (out["medals"], out["weapons"], out["modes"]) == ({}, {}, {})
    assert out["first_played"] is None and out["last_played"] is None
    json.dumps(out)


def test_public_record_after_matches() -> None:
    record = sum_deltas(
        "p-1",
        [delta("m-1", shots_fired=300, shots_hit=120), delta("m-2", mode="ctf", deaths=0)],
    )
    out = public_record(record)
    assert set(out) >= PUBLIC_FIELDS
    assert (out["matches"], out["wins"], out["kills"], out["deaths"]) == (2, 2, 24, 7)
    assert out["kd"] == round(24 / 7, 4)
    assert out["accuracy"] == 0.4
    assert out["medals"] == {"double_kill": 4, "killjoy": 2}
    assert out["weapons"] == {"battle_rifle": {"kills": 16, "headshots": 8}}
    # Per mode: the same counters, with their ratios.
    assert set(out["modes"]) == {"ctf", "slayer"}
    assert set(out["modes"]["ctf"]) >= set(RECORD_COUNTERS) | {"kd", "kda", "accuracy"}
    assert out["modes"]["ctf"]["kd"] == 12.0
    assert out["modes"]["slayer"]["deaths"] == 7
    assert out["first_played"] == DAY.isoformat()
    json.dumps(out)


# ---- storage round trips ---------------------------------------------------------------


@pytest.mark.parametrize("team", ["red", None])
def test_stat_delta_round_trips_through_json(team: str | None) -> None:
    original = StatDelta(
        match_id="m-1",
        player_id="p-1",
        mode="slayer",
        map="haven",
        ended_at=DAY,
        outcome=Outcome.DNF,
        team=team,
        counters=delta_counters(Outcome.DNF, {"kills": 3}),
        medals={"killjoy": 1},
        weapons={"dmr": {"kills": 3, "headshots": 1}},
    )
    assert StatDelta.from_dict(json.loads(json.dumps(original.to_dict()))) == original


def test_service_record_round_trips_through_json() -> None:
    record = sum_deltas("p-1", [delta("m-1"), delta("m-2", DAY + timedelta(days=3), "ctf")])
    assert ServiceRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    empty = ServiceRecord("p-2")
    assert ServiceRecord.from_dict(json.loads(json.dumps(empty.to_dict()))) == empty


def test_an_old_record_missing_counters_reads_them_as_zero() -> None:
    record = ServiceRecord.from_dict({"player_id": "p-1", "counters": {"kills": 4}})
    assert record.counters == {**dict.fromkeys(RECORD_COUNTERS, 0), "kills": 4}


# ---- played dates, apply and revert ----------------------------------------------------


def test_first_and_last_played_are_the_earliest_and_latest_match_whatever_the_order() -> None:
    early, middle, late = DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)
    record = sum_deltas("p-1", [delta("m-2", middle), delta("m-3", late), delta("m-1", early)])
    assert (record.first_played, record.last_played) == (early, late)


def test_revert_leaves_played_dates_to_the_store() -> None:
    d = delta()
    record = revert_delta(apply_delta(ServiceRecord("p-1"), d), d)
    assert record.first_played == DAY and record.last_played == DAY


def test_reverting_the_only_match_gives_an_empty_record() -> None:
    d = delta()
    record = revert_delta(apply_delta(ServiceRecord("p-1"), d), d)
    assert record.counters == dict.fromkeys(RECORD_COUNTERS, 0)
    assert (record.medals, record.weapons, record.modes) == ({}, {}, {})


def test_a_medal_named_like_a_counter_is_dropped_when_reverted_to_zero() -> None:
    # Medal names are client input; "assists" is a valid one. A voided match must leave no
    # zero entry behind, whatever the medal is called.
    d = StatDelta(
        "m-1", "p-1", "slayer", "haven", DAY, Outcome.WIN, None,
        delta_counters(Outcome.WIN, {}), medals={"assists": 2, "killjoy": 1},
    )  # fmt: skip
    base = ServiceRecord("p-1", medals={"killjoy": 3})
    assert revert_delta(apply_delta(base, d), d).medals == {"killjoy": 3}
