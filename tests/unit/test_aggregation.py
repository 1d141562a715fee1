"""Aggregation of a match into per-player deltas, and how deltas add up to a record."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.aggregation import MULTI_KILL_MEDALS, aggregate, multi_kill_medals
from app.domain.model import REPORTED_COUNTERS, Match
from app.domain.stats import (
    RECORD_COUNTERS,
    ServiceRecord,
    StatDelta,
    apply_delta,
    revert_delta,
    sum_deltas,
)
from app.domain.validation import parse_match

ENDED = datetime(2026, 11, 21, 18, 12, tzinfo=UTC)

# ---- the multi-kill ladder -------------------------------------------------------------


@pytest.mark.parametrize(
    ("times", "medals"),
    [
        ([], {}),
        ([10.0], {}),
        ([0.0, 3.0], {"double_kill": 1}),
        ([0.0, 4.0], {"double_kill": 1}),  # exactly the window still counts
        ([0.0, 4.001], {}),
        ([0.0, 2.0, 4.0], {"double_kill": 1, "triple_kill": 1}),
        # The window runs from the previous kill, not from the first of the chain.
        ([0.0, 3.5, 7.0, 10.5], {"double_kill": 1, "triple_kill": 1, "overkill": 1}),
        # A gap longer than the window restarts the chain.
        ([0.0, 3.0, 8.0, 10.0], {"double_kill": 2}),
        ([0.0, 3.0, 7.5, 9.0, 10.0], {"double_kill": 2, "triple_kill": 1}),
        # Kills arrive in any order.
        ([4.0, 0.0, 2.0], {"double_kill": 1, "triple_kill": 1}),
        ([10.0, 3.0, 8.0, 0.0], {"double_kill": 2}),
    ],
)
def test_multi_kill_ladder(times: list[float], medals: dict[str, int]) -> None:
    assert multi_kill_medals(times) == medals


def test_a_chain_of_ten_earns_each_medal_of_the_ladder_once() -> None:
    assert multi_kill_medals([float(i) for i in range(10)]) == dict.fromkeys(MULTI_KILL_MEDALS, 1)


def test_longer_chains_keep_earning_the_last_medal() -> None:
    medals = multi_kill_medals([float(i) for i in range(13)])
    assert medals == {**dict.fromkeys(MULTI_KILL_MEDALS, 1), "killionaire": 4}


# ---- aggregate -------------------------------------------------------------------------


def _line(pid: str, outcome: str = "win", **extra: Any) -> dict[str, Any]:
    return {
        "player_id": pid,
        "team": "red",
        "outcome": outcome,
        "score": 1500,
        "kills": 12,
        "deaths": 7,
        "assists": 3,
        "headshots": 5,
        "shots_fired": 300,
        "shots_hit": 120,
        "damage_dealt": 3100,
        "time_played_s": 720,
        **extra,
    }


def _kill(
    t: float, killer: str, victim: str, weapon: str, headshot: bool = False
) -> dict[str, Any]:
    return {
        "t": t,
        "type": "kill",
        "killer": killer,
        "victim": victim,
        "weapon": weapon,
        "headshot": headshot,
    }


def _match(players: list[dict[str, Any]], events: list[dict[str, Any]] | None = None) -> Match:
    data: dict[str, Any] = {
        "match_id": "m-1",
        "mode": "slayer",
        "map": "haven",
        "started_at": (ENDED - timedelta(minutes=12)).isoformat(),
        "ended_at": ENDED.isoformat(),
        "players": players,
    }
    if events is not None:
        data["events"] = events
    return parse_match(data, now=None)


REPORTED: dict[str, Any] = {
    "medals": {"double_kill": 2, "triple_kill": 1, "killjoy": 1},
    "weapons": {"battle_rifle": {"kills": 8, "headshots": 4}, "dmr": {"kills": 4, "headshots": 1}},
}


def test_with_events_weapons_and_multi_kills_come_from_the_events() -> None:
    match = _match(
        [_line("p-1", **REPORTED), _line("p-2", "loss", medals={"double_kill": 3})],
        [
            _kill(10.0, "p-1", "p-2", "battle_rifle", headshot=True),
            _kill(13.0, "p-1", "p-2", "sniper_rifle"),
            _kill(100.0, "p-2", "p-1", "battle_rifle"),
            {"t": 200.0, "type": "flag_capture", "killer": "p-2"},  # not a kill
        ],
    )
    deltas = aggregate(match)
    p1, p2 = deltas["p-1"], deltas["p-2"]
    assert p1.weapons == {
        "battle_rifle": {"kills": 1, "headshots": 1},
        "sniper_rifle": {"kills": 1, "headshots": 0},
    }
    # Reported multi-kill medals are replaced; the other reported medals are kept.
    assert p1.medals == {"double_kill": 1, "killjoy": 1}
    assert p2.weapons == {"battle_rifle": {"kills": 1, "headshots": 0}}
    assert p2.medals == {}


def test_with_events_a_player_without_kills_has_no_weapons_even_if_reported() -> None:
    match = _match(
        [_line("p-1"), _line("p-2", "loss", **REPORTED)],
        [_kill(10.0, "p-1", "p-2", "dmr")],
    )
    p2 = aggregate(match)["p-2"]
    assert p2.weapons == {}
    assert p2.medals == {"killjoy": 1}


def test_a_suicide_is_no_kill() -> None:
    match = _match(
        [_line("p-1"), _line("p-2", "loss")],
        [_kill(10.0, "p-1", "p-1", "frag_grenade"), _kill(12.0, "p-1", "p-2", "dmr")],
    )
    p1 = aggregate(match)["p-1"]
    assert p1.weapons == {"dmr": {"kills": 1, "headshots": 0}}
    assert p1.medals == {}  # the suicide does not start a double kill


def test_without_events_the_reported_weapons_and_medals_are_used_as_is() -> None:
    match = _match([_line("p-1", **REPORTED)])
    p1 = aggregate(match)["p-1"]
    assert p1.medals == REPORTED["medals"]
    assert p1.weapons == REPORTED["weapons"]


def test_an_empty_event_list_counts_as_no_events() -> None:
    match = _match([_line("p-1", **REPORTED)], events=[])
    assert aggregate(match)["p-1"].weapons == REPORTED["weapons"]


def test_zero_entries_are_dropped_from_the_delta() -> None:
    match = _match(
        [_line("p-1", medals={"killjoy": 0}, weapons={"dmr": {"kills": 0, "headshots": 0}})]
    )
    p1 = aggregate(match)["p-1"]
    assert p1.medals == {}
    assert p1.weapons == {}


@pytest.mark.parametrize("with_events", [False, True])
def test_counters_always_come_from_the_reports(with_events: bool) -> None:
    events = [_kill(float(t), "p-1", "p-2", "dmr", headshot=True) for t in range(5)]
    match = _match([_line("p-1"), _line("p-2", "loss")], events if with_events else None)
    p1 = aggregate(match)["p-1"]
    for name in REPORTED_COUNTERS:
        assert p1.counters[name] == _line("p-1")[name]


@pytest.mark.parametrize(
    ("outcome", "counter"), [("win", "wins"), ("loss", "losses"), ("tie", "ties"), ("dnf", "dnf")]
)
def test_outcome_counters(outcome: str, counter: str) -> None:
    delta = aggregate(_match([_line("p-1", outcome)]))["p-1"]
    outcome_counters = {k: delta.counters[k] for k in ("matches", "wins", "losses", "ties", "dnf")}
    expected = {"matches": 1, "wins": 0, "losses": 0, "ties": 0, "dnf": 0, counter: 1}
    assert outcome_counters == expected
    assert set(delta.counters) == set(RECORD_COUNTERS)


def test_one_delta_per_player_carrying_the_match() -> None:
    match = _match([_line("p-1"), _line("p-2", "loss", team="blue")])
    deltas = aggregate(match)
    assert list(deltas) == ["p-1", "p-2"]
    p2 = deltas["p-2"]
    assert (p2.match_id, p2.player_id, p2.mode, p2.map) == ("m-1", "p-2", "slayer", "haven")
    assert (p2.ended_at, p2.outcome.value, p2.team) == (ENDED, "loss", "blue")


# ---- property tests: random valid matches ----------------------------------------------

POOL = [f"p-{i}" for i in range(5)]
MODES = ["slayer", "ctf", "oddball"]
MEDALS = ["killjoy", "headshot", "double_kill", "triple_kill", "assist_spree"]
WEAPONS = ["battle_rifle", "dmr", "sniper_rifle"]
OUTCOMES = ["win", "loss", "tie", "dnf"]
OUTCOME_COUNTER = {"win": "wins", "loss": "losses", "tie": "ties", "dnf": "dnf"}
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


@st.composite
def weapon_lines(draw: st.DrawFn) -> dict[str, int]:
    kills = draw(st.integers(0, 20))
    return {"kills": kills, "headshots": draw(st.integers(0, kills))}


@st.composite
def player_lines(draw: st.DrawFn, pid: str, duration: int) -> dict[str, Any]:
    kills = draw(st.integers(0, 40))
    fired = draw(st.integers(0, 500))
    return {
        "player_id": pid,
        "outcome": draw(st.sampled_from(OUTCOMES)),
        "score": draw(st.integers(0, 5000)),
        "kills": kills,
        "deaths": draw(st.integers(0, 40)),
        "assists": draw(st.integers(0, 20)),
        "headshots": draw(st.integers(0, kills)),
        "shots_fired": fired,
        "shots_hit": draw(st.integers(0, fired)),
        "damage_dealt": draw(st.integers(0, 20_000)),
        "time_played_s": draw(st.integers(0, duration)),
        "medals": draw(st.dictionaries(st.sampled_from(MEDALS), st.integers(0, 5), max_size=3)),
        "weapons": draw(st.dictionaries(st.sampled_from(WEAPONS), weapon_lines(), max_size=2)),
    }


@st.composite
def match_dicts(draw: st.DrawFn, match_id: str) -> dict[str, Any]:
    """A valid match body; kill times are halves so that chain gaps are exact."""
    ids = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True))
    started = EPOCH + timedelta(seconds=draw(st.integers(0, 10**7)))
    duration = draw(st.integers(60, 1800))
    data: dict[str, Any] = {
        "match_id": match_id,
        "mode": draw(st.sampled_from(MODES)),
        "map": "haven",
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(seconds=duration)).isoformat(),
        "players": [draw(player_lines(pid, duration)) for pid in ids],
    }
    kill = st.fixed_dictionaries(
        {
            "t": st.integers(0, 2 * duration).map(lambda x: x / 2),
            "type": st.just("kill"),
            "killer": st.sampled_from(ids),
            "victim": st.sampled_from(ids),
            "weapon": st.sampled_from(WEAPONS),
            "headshot": st.booleans(),
        }
    )
    events = draw(st.one_of(st.none(), st.lists(kill, min_size=1, max_size=10)))
    if events is not None:
        data["events"] = events
    return data


@st.composite
def match_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 4))
    return [draw(match_dicts(f"m-{i}")) for i in range(n)]


def _deltas_by_player(bodies: Iterable[dict[str, Any]]) -> dict[str, list[StatDelta]]:
    """Each player's deltas, in the order of ``bodies``."""
    out: dict[str, list[StatDelta]] = {pid: [] for pid in POOL}
    for body in bodies:
        for pid, delta in aggregate(parse_match(body, now=None)).items():
            out[pid].append(delta)
    return out


def _reference_medals_and_weapons(
    body: dict[str, Any], pid: str
) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """What one match adds to ``pid``'s medals and weapons, computed from the JSON alone."""
    line = next(p for p in body["players"] if p["player_id"] == pid)
    if not body.get("events"):
        return Counter(line["medals"]), {w: Counter(v) for w, v in line["weapons"].items()}
    medals = Counter({k: v for k, v in line["medals"].items() if k not in MULTI_KILL_MEDALS})
    weapons: dict[str, Counter[str]] = defaultdict(Counter)
    times = []
    for e in body["events"]:
        if e["killer"] == pid and e["victim"] != pid:
            weapons[e["weapon"]]["kills"] += 1
            weapons[e["weapon"]]["headshots"] += int(e["headshot"])
            times.append(e["t"])
    chain = 0
    last = None
    for t in sorted(times):
        chain = chain + 1 if last is not None and t - last <= 4 else 1
        last = t
        if chain >= 2:
            medals[MULTI_KILL_MEDALS[min(chain, 10) - 2]] += 1
    return medals, weapons


def _expected_record(bodies: list[dict[str, Any]], pid: str) -> ServiceRecord:
    counters: Counter[str] = Counter(dict.fromkeys(RECORD_COUNTERS, 0))
    modes: dict[str, Counter[str]] = defaultdict(lambda: Counter(dict.fromkeys(RECORD_COUNTERS, 0)))
    medals: Counter[str] = Counter()
    weapons: dict[str, Counter[str]] = defaultdict(Counter)
    ended = []
    for body in bodies:
        line = next((p for p in body["players"] if p["player_id"] == pid), None)
        if line is None:
            continue
        ended.append(datetime.fromisoformat(body["ended_at"]))
        for c in (counters, modes[body["mode"]]):
            c["matches"] += 1
            c[OUTCOME_COUNTER[line["outcome"]]] += 1
            for name in REPORTED_COUNTERS:
                c[name] += line[name]
        m, w = _reference_medals_and_weapons(body, pid)
        medals.update(m)
        for name, line_w in w.items():
            weapons[name].update(line_w)
    return ServiceRecord(
        player_id=pid,
        counters=dict(counters),
        medals={k: v for k, v in medals.items() if v},
        weapons={
            k: {"kills": v["kills"], "headshots": v["headshots"]}
            for k, v in weapons.items()
            if v["kills"] or v["headshots"]
        },
        modes={k: dict(v) for k, v in modes.items()},
        first_played=min(ended, default=None),
        last_played=max(ended, default=None),
    )


FAST = settings(max_examples=100, deadline=None)


@FAST
@given(bodies=match_lists())
def test_applying_one_by_one_equals_sum_deltas_equals_independent_sums(
    bodies: list[dict[str, Any]],
) -> None:
    for pid, deltas in _deltas_by_player(bodies).items():
        record = ServiceRecord(pid)
        for delta in deltas:
            record = apply_delta(record, delta)
        assert record == sum_deltas(pid, deltas)
        assert record == _expected_record(bodies, pid)


@FAST
@given(bodies=match_lists(), data=st.data())
def test_the_order_of_application_does_not_change_the_record(
    bodies: list[dict[str, Any]], data: st.DataObject
) -> None:
    for pid, deltas in _deltas_by_player(bodies).items():
        shuffled = data.draw(st.permutations(deltas))
        assert sum_deltas(pid, shuffled) == sum_deltas(pid, deltas)


@FAST
@given(bodies=match_lists(), extra=match_dicts("m-extra"))
def test_apply_then_revert_gives_back_the_record_before(
    bodies: list[dict[str, Any]], extra: dict[str, Any]
) -> None:
    history = _deltas_by_player(bodies)
    for pid, delta in aggregate(parse_match(extra, now=None)).items():
        before = sum_deltas(pid, history[pid])
        after = revert_delta(apply_delta(before, delta), delta)
        assert after.counters == before.counters
        assert after.medals == before.medals
        assert after.weapons == before.weapons
        assert after.modes == before.modes
