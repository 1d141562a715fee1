"""Validation of a posted match: one test per rule, each error naming its field exactly."""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.domain.errors import FieldError, InvalidMatch
from app.domain.model import REPORTED_COUNTERS, Match, MatchEvent, Outcome, WeaponLine
from app.domain.validation import COUNTER_MAX, MAX_EVENTS, MEDAL_MAX, parse_match

NOW = datetime(2026, 11, 21, 19, 0, tzinfo=UTC)
ENDED = datetime(2026, 11, 21, 18, 12, tzinfo=UTC)

Loc = tuple[str | int, ...]


def example() -> dict[str, Any]:
    """DESIGN §5's example, plus the victim p-2 (the doc's event names a non-player) and a
    p-3 that no event names, so that per-player rules can be broken in isolation."""
    return {
        "match_id": "m-8f3a",
        "mode": "slayer",
        "map": "haven",
        "started_at": "2026-11-21T18:00:00Z",
        "ended_at": "2026-11-21T18:12:00Z",
        "players": [
            {
                "player_id": "p-1",
                "team": "red",
                "outcome": "win",
                "score": 1500,
                "kills": 12,
                "deaths": 7,
                "assists": 3,
                "headshots": 5,
                "shots_fired": 300,
                "shots_hit": 120,
                "damage_dealt": 3100,
                "time_played_s": 720,
                "medals": {"double_kill": 2},
                "weapons": {"battle_rifle": {"kills": 8, "headshots": 4}},
            },
            {"player_id": "p-2", "team": "blue", "outcome": "loss", "kills": 7, "deaths": 12},
            {
                "player_id": "p-3",
                "team": "blue",
                "outcome": "loss",
                "kills": 2,
                "headshots": 1,
                "shots_fired": 40,
                "shots_hit": 10,
                "medals": {"killjoy": 1},
                "weapons": {"dmr": {"kills": 2, "headshots": 1}},
            },
        ],
        "events": [
            {
                "t": 31.5,
                "type": "kill",
                "killer": "p-1",
                "victim": "p-2",
                "weapon": "battle_rifle",
                "headshot": True,
            }
        ],
    }


def errors_of(data: object, now: datetime | None = NOW) -> list[FieldError]:
    with pytest.raises(InvalidMatch) as info:
        parse_match(data, now)
    return info.value.errors


def locs_of(data: object, now: datetime | None = NOW) -> list[Loc]:
    return [e.loc for e in errors_of(data, now)]


def p3(data: dict[str, Any]) -> dict[str, Any]:
    player: dict[str, Any] = data["players"][2]
    return player


def event0(data: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = data["events"][0]
    return event


# ---- a valid match ---------------------------------------------------------------------


def test_the_design_example_parses_into_a_match() -> None:
    match = parse_match(example(), NOW)
    assert match.match_id == "m-8f3a"
    assert (match.mode, match.map) == ("slayer", "haven")
    assert match.started_at == datetime(2026, 11, 21, 18, 0, tzinfo=UTC)
    assert match.ended_at == ENDED
    assert match.player_ids == ("p-1", "p-2", "p-3")
    p1 = match.players[0]
    assert p1.outcome is Outcome.WIN and p1.team == "red"
    assert p1.counters["kills"] == 12 and p1.counters["shots_hit"] == 120
    assert p1.medals == {"double_kill": 2}
    assert p1.weapons == {"battle_rifle": WeaponLine(kills=8, headshots=4)}
    # Counters a client leaves out count as zero.
    assert match.players[1].counters["assists"] == 0
    assert match.events == (MatchEvent(31.5, "kill", "p-1", "p-2", "battle_rifle", True),)


def test_a_match_without_events_and_with_a_non_kill_event_parse() -> None:
    data = example()
    del data["events"]
    assert parse_match(data, NOW).events == ()
    data["events"] = [{"t": 5, "type": "flag_capture"}]
    assert parse_match(data, NOW).events == (MatchEvent(5.0, "flag_capture"),)


def test_time_zones_are_normalised_to_utc() -> None:
    data = example()
    data["ended_at"] = "2026-11-21T19:12:00+01:00"
    assert parse_match(data, NOW).ended_at == ENDED


def test_payload_hash_ignores_key_order_and_whitespace() -> None:
    data = example()
    compact = json.dumps(data, separators=(",", ":"))
    reordered = json.dumps(_reverse_keys(data), indent=4)
    assert compact != reordered
    a = parse_match(json.loads(compact), NOW)
    b = parse_match(json.loads(reordered), NOW)
    assert a.payload_hash() == b.payload_hash()


def test_payload_hash_changes_when_a_counter_changes() -> None:
    data = example()
    before = parse_match(data, NOW).payload_hash()
    data["players"][0]["assists"] = 4
    assert parse_match(data, NOW).payload_hash() != before


def test_to_dict_round_trips_to_an_equal_match() -> None:
    match = parse_match(example(), NOW)
    again = parse_match(json.loads(json.dumps(match.to_dict())), now=None)
    assert again == match
    assert again.payload_hash() == match.payload_hash()


def _reverse_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reverse_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_keys(v) for v in value]
    return value


# ---- the body and required fields -----------------------------------------------------


@pytest.mark.parametrize("body", [[], "match", 42, None, [example()]])
def test_body_must_be_an_object(body: object) -> None:
    assert errors_of(body) == [FieldError((), "body must be a JSON object", "dict_type")]


@pytest.mark.parametrize("field", ["match_id", "mode", "map", "started_at", "ended_at", "players"])
def test_each_required_match_field(field: str) -> None:
    data = example()
    del data[field]
    errors = errors_of(data)
    assert [(e.loc, e.type) for e in errors] == [((field,), "missing")]


@pytest.mark.parametrize("field", ["player_id", "outcome"])
def test_each_required_player_field(field: str) -> None:
    data = example()
    del p3(data)[field]
    errors = errors_of(data)
    assert [(e.loc, e.type) for e in errors] == [(("players", 2, field), "missing")]


# ---- ids --------------------------------------------------------------------------------

BAD_IDS: list[object] = [
    "",
    "x" * 65,
    "a/b",
    "a\\b",
    "a#b",
    "a?b",
    "a\x00b",
    "a\x7fb",
    "a\nb",
    "a b",
    " ab",
    42,
    ["p-1"],
    True,
]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
@pytest.mark.parametrize(
    "loc",
    [
        ("match_id",),
        ("mode",),
        ("map",),
        ("players", 2, "player_id"),
        ("players", 2, "team"),
        ("events", 0, "weapon"),
        ("events", 0, "type"),
    ],
)
def test_ids_are_checked(loc: Loc, bad: object) -> None:
    data = example()
    target: Any = data
    for part in loc[:-1]:
        target = target[part]
    target[loc[-1]] = bad
    assert locs_of(data) == [loc]


@pytest.mark.parametrize("bad", [b for b in BAD_IDS if isinstance(b, str)], ids=repr)
@pytest.mark.parametrize("kind", ["medals", "weapons"])
def test_medal_and_weapon_names_are_checked(kind: str, bad: str) -> None:
    data = example()
    p3(data)[kind] = {bad: 1 if kind == "medals" else {"kills": 1}}
    # The name is echoed at most 64 characters long, to keep error bodies small.
    assert locs_of(data) == [("players", 2, kind, bad[:64])]


def test_a_64_character_id_is_accepted() -> None:
    data = example()
    data["match_id"] = "m" * 64
    assert parse_match(data, NOW).match_id == "m" * 64


# ---- players ---------------------------------------------------------------------------


@pytest.mark.parametrize("players", [[], {"p-1": {}}, "p-1"], ids=["empty", "object", "string"])
def test_players_must_be_a_non_empty_list(players: object) -> None:
    data = example()
    data["players"] = players
    assert locs_of(data) == [("players",)]


def _numbered_players(n: int) -> list[dict[str, Any]]:
    return [{"player_id": f"p-{i}", "outcome": "tie"} for i in range(1, n + 1)]


def test_at_most_32_players() -> None:
    data = example()
    data["players"] = _numbered_players(33)
    assert locs_of(data) == [("players",)]
    data["players"] = _numbered_players(32)
    assert len(parse_match(data, NOW).players) == 32


def test_a_player_must_be_an_object() -> None:
    data = example()
    data["players"][2] = "p-3"
    assert locs_of(data) == [("players", 2)]


def test_player_ids_are_unique() -> None:
    data = example()
    p3(data)["player_id"] = "p-1"
    errors = errors_of(data)
    assert [e.loc for e in errors] == [("players", 2, "player_id")]
    assert "p-1" in errors[0].msg


@pytest.mark.parametrize("outcome", ["WIN", "draw", "", 1, None, ["win"]])
def test_outcome_is_win_loss_tie_or_dnf(outcome: object) -> None:
    data = example()
    p3(data)["outcome"] = outcome
    assert locs_of(data) == [("players", 2, "outcome")]


@pytest.mark.parametrize("outcome", ["win", "loss", "tie", "dnf"])
def test_every_outcome_is_accepted(outcome: str) -> None:
    data = example()
    p3(data)["outcome"] = outcome
    assert parse_match(data, NOW).players[2].outcome == Outcome(outcome)


# ---- counters --------------------------------------------------------------------------


def _bad_counter_values(name: str) -> list[object]:
    return [-1, 1.5, 2.0, "3", True, False, None, [1], COUNTER_MAX[name] + 1]


@pytest.mark.parametrize(
    ("name", "bad"),
    [(n, v) for n in REPORTED_COUNTERS for v in _bad_counter_values(n)],
    ids=repr,
)
def test_counters_are_non_negative_integers_within_their_maximum(name: str, bad: object) -> None:
    data = example()
    # A bare player: no cross-field rule can fire whichever counter is broken.
    data["players"][2] = {"player_id": "p-3", "outcome": "loss", name: bad}
    errors = errors_of(data)
    assert [e.loc for e in errors] == [("players", 2, name)]


def test_counters_at_their_maximum_are_accepted() -> None:
    data = example()
    p3(data).update(COUNTER_MAX)
    assert dict(parse_match(data, NOW).players[2].counters) == dict(COUNTER_MAX)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1", MEDAL_MAX + 1], ids=repr)
def test_medal_counts(bad: object) -> None:
    data = example()
    p3(data)["medals"] = {"killjoy": bad}
    assert locs_of(data) == [("players", 2, "medals", "killjoy")]


@pytest.mark.parametrize("field", ["kills", "headshots"])
@pytest.mark.parametrize("bad", [-1, 1.5, True, "1", COUNTER_MAX["kills"] + 1], ids=repr)
def test_weapon_counts(field: str, bad: object) -> None:
    data = example()
    p3(data)["weapons"] = {"dmr": {"kills": 2, "headshots": 0, field: bad}}
    assert locs_of(data) == [("players", 2, "weapons", "dmr", field)]


@pytest.mark.parametrize("kind", ["medals", "weapons"])
def test_medals_and_weapons_must_be_objects_of_bounded_size(kind: str) -> None:
    data = example()
    p3(data)[kind] = ["dmr"]
    assert locs_of(data) == [("players", 2, kind)]
    entry: object = 1 if kind == "medals" else {"kills": 0}
    p3(data)[kind] = {f"n{i}": entry for i in range(65)}
    assert locs_of(data) == [("players", 2, kind)]
    p3(data)[kind] = {f"n{i}": entry for i in range(64)}
    parse_match(data, NOW)


def test_a_weapon_line_must_be_an_object() -> None:
    data = example()
    p3(data)["weapons"] = {"dmr": 2}
    assert locs_of(data) == [("players", 2, "weapons", "dmr")]


def test_shots_hit_may_not_exceed_shots_fired() -> None:
    data = example()
    p3(data)["shots_hit"] = 41
    assert locs_of(data) == [("players", 2, "shots_hit")]
    p3(data)["shots_hit"] = 40
    parse_match(data, NOW)


def test_headshots_may_not_exceed_kills() -> None:
    data = example()
    p3(data)["headshots"] = 3
    assert locs_of(data) == [("players", 2, "headshots")]


def test_weapon_headshots_may_not_exceed_weapon_kills() -> None:
    data = example()
    p3(data)["weapons"] = {"dmr": {"kills": 2, "headshots": 3}}
    assert locs_of(data) == [("players", 2, "weapons", "dmr", "headshots")]


@pytest.mark.parametrize(
    ("field", "weapon_field"),
    [("shots_fired", None), ("kills", None), (None, "kills")],
)
def test_a_bad_counter_is_not_also_reported_as_a_broken_comparison(
    field: str | None, weapon_field: str | None
) -> None:
    # shots_hit <= shots_fired and headshots <= kills are checked only when both are valid:
    # otherwise the client is told that a correct field is wrong.
    data = example()
    if field:
        p3(data)[field] = "40"
        expected: Loc = ("players", 2, field)
    else:
        p3(data)["weapons"]["dmr"][weapon_field] = -2
        expected = ("players", 2, "weapons", "dmr", weapon_field or "")
    assert locs_of(data) == [expected]


# ---- times -----------------------------------------------------------------------------


def test_ended_at_may_not_precede_started_at() -> None:
    data = example()
    data["ended_at"] = "2026-11-21T17:59:59Z"
    assert locs_of(data) == [("ended_at",)]


@pytest.mark.parametrize("field", ["started_at", "ended_at"])
def test_datetimes_must_carry_a_time_zone(field: str) -> None:
    data = example()
    data[field] = data[field].rstrip("Z")
    errors = errors_of(data)
    assert [e.loc for e in errors] == [(field,)]
    assert "time zone" in errors[0].msg


@pytest.mark.parametrize(
    "other_form", ["2026-11-21 18:00:00Z", "20261121T180000Z", "2026-11-21T18:00Z", "2026-11-21"]
)
def test_datetimes_are_rfc_3339_only(other_form: str) -> None:
    # Python reads these, but the documented contract (JSON Schema's date-time) does not.
    data = example()
    data["started_at"] = other_form
    assert locs_of(data) == [("started_at",)]


@pytest.mark.parametrize(
    "garbage", ["yesterday", "", "2026-13-01T00:00:00Z", "2026-11-21T25:00:00Z", 1763748000, []]
)
@pytest.mark.parametrize("field", ["started_at", "ended_at"])
def test_garbage_datetimes(field: str, garbage: object) -> None:
    data = example()
    data[field] = garbage
    assert locs_of(data) == [(field,)]


def test_ended_at_in_the_future_is_rejected_with_now_injected() -> None:
    data = example()
    far = NOW + timedelta(minutes=6)
    data["started_at"] = (far - timedelta(minutes=10)).isoformat()
    data["ended_at"] = far.isoformat()
    assert locs_of(data, now=NOW) == [("ended_at",)]
    # Five minutes of clock skew are tolerated.
    data["ended_at"] = (NOW + timedelta(minutes=4)).isoformat()
    parse_match(data, now=NOW)


def test_now_none_skips_the_future_check() -> None:
    data = example()
    data["started_at"] = "2999-01-01T00:00:00Z"
    data["ended_at"] = "2999-01-01T00:12:00Z"
    assert locs_of(data, now=NOW) == [("ended_at",)]
    assert parse_match(data, now=None).ended_at.year == 2999


def test_a_match_lasts_at_most_six_hours() -> None:
    data = example()
    data["ended_at"] = "2026-11-22T00:00:01Z"
    assert locs_of(data, now=None) == [("ended_at",)]
    data["ended_at"] = "2026-11-22T00:00:00Z"
    parse_match(data, now=None)


def test_nothing_was_played_before_halo() -> None:
    data = example()
    data["started_at"] = "2001-11-14T23:55:00Z"
    data["ended_at"] = "2001-11-15T00:05:00Z"
    assert locs_of(data) == [("started_at",)]


# ---- events ----------------------------------------------------------------------------


@pytest.mark.parametrize("events", [{"t": 1}, "kill", 3])
def test_events_must_be_a_list(events: object) -> None:
    data = example()
    data["events"] = events
    assert locs_of(data) == [("events",)]


def test_at_most_ten_thousand_events() -> None:
    data = example()
    data["events"] = [dict(event0(data), t=i % 700) for i in range(MAX_EVENTS)]
    assert len(parse_match(data, NOW).events) == MAX_EVENTS
    data["events"].append(event0(data))
    assert locs_of(data) == [("events",)]


def test_a_player_kills_with_at_most_64_weapons_in_one_match() -> None:
    # Each weapon an event names becomes a name in the killer's line and record: unbounded,
    # one post could outgrow the row that stores them.
    data = example()
    kill = event0(data)
    data["events"] = [dict(kill, weapon=f"w{i % 65}", t=i % 700) for i in range(130)]
    assert locs_of(data) == [("events", 64, "weapon"), ("events", 129, "weapon")]
    assert "more than 64 weapons" in errors_of(data)[0].msg
    data["events"] = [dict(kill, weapon=f"w{i % 64}", t=i % 700) for i in range(130)]
    assert len(parse_match(data, NOW).events) == 130


def test_an_event_must_be_an_object() -> None:
    data = example()
    data["events"].append(["kill"])
    assert locs_of(data) == [("events", 1)]


@pytest.mark.parametrize("field", ["killer", "victim"])
def test_events_name_players_of_the_match(field: str) -> None:
    data = example()
    event0(data)[field] = "p-99"
    errors = errors_of(data)
    assert [e.loc for e in errors] == [("events", 0, field)]
    assert "p-99" in errors[0].msg


@pytest.mark.parametrize("field", ["killer", "victim", "weapon", "type"])
def test_a_kill_event_names_killer_victim_and_weapon(field: str) -> None:
    data = example()
    del event0(data)[field]
    errors = errors_of(data)
    assert [(e.loc, e.type) for e in errors] == [(("events", 0, field), "missing")]


@pytest.mark.parametrize(
    "t", [-0.5, math.nan, math.inf, -math.inf, "31.5", True, None, 720 + 300.5], ids=repr
)
def test_event_time_is_a_number_of_seconds_within_the_match(t: object) -> None:
    data = example()
    event0(data)["t"] = t
    assert locs_of(data) == [("events", 0, "t")]


@pytest.mark.parametrize("t", [0, 0.0, 720, 720 + 300])
def test_event_time_bounds_are_inclusive_with_clock_skew(t: float) -> None:
    data = example()
    event0(data)["t"] = t
    assert parse_match(data, NOW).events[0].t == t


@pytest.mark.parametrize("headshot", ["yes", 1, 0, None, "true"])
def test_headshot_must_be_a_bool(headshot: object) -> None:
    data = example()
    event0(data)["headshot"] = headshot
    assert locs_of(data) == [("events", 0, "headshot")]


# ---- every error is collected ----------------------------------------------------------


def test_two_bad_fields_give_two_errors() -> None:
    data = example()
    data["match_id"] = ""
    data["players"][0]["deaths"] = -1
    assert locs_of(data) == [("match_id",), ("players", 0, "deaths")]


def test_every_error_is_collected_across_sections() -> None:
    data = example()
    del data["mode"]
    data["ended_at"] = "soon"
    data["players"][1]["outcome"] = "draw"
    p3(data)["shots_hit"] = 41
    p3(data)["medals"] = {"killjoy": -1}
    event0(data)["headshot"] = "yes"
    data["events"].append({"t": 1, "type": "kill", "killer": "p-1", "victim": "p-9"})
    assert locs_of(data) == [
        ("mode",),
        ("ended_at",),
        ("players", 1, "outcome"),
        ("players", 2, "shots_hit"),
        ("players", 2, "medals", "killjoy"),
        ("events", 0, "headshot"),
        ("events", 1, "victim"),
        ("events", 1, "weapon"),
    ]


@pytest.mark.parametrize(
    "breakage",
    ["bad_killer_line", "players_missing", "too_many_players", "times_unknown"],
)
def test_a_problem_elsewhere_does_not_cascade_onto_every_event(breakage: str) -> None:
    # One mistake must give one error, not one more per event (up to 10,000 of them).
    data = example()
    data["events"] = [dict(event0(data), t=400 + i) for i in range(50)]
    expected: list[Loc]
    if breakage == "bad_killer_line":
        data["players"][0]["deaths"] = -1
        expected = [("players", 0, "deaths")]
    elif breakage == "players_missing":
        del data["players"]
        expected = [("players",)]
    elif breakage == "too_many_players":
        data["players"] = data["players"] + _numbered_players(33)[3:]
        expected = [("players",)]
    else:
        data["started_at"] = "at some point"
        expected = [("started_at",)]
    assert locs_of(data) == expected


def test_errors_are_field_errors_with_a_message_and_a_type() -> None:
    data = example()
    p3(data)["kills"] = "many"
    (error,) = errors_of(data)
    assert error == FieldError(("players", 2, "kills"), "must be an integer", "int_type")
    assert "players.2.kills" in str(InvalidMatch([error]))


def test_parse_match_does_not_mutate_its_input() -> None:
    data = example()
    snapshot = copy.deepcopy(data)
    assert isinstance(parse_match(data, NOW), Match)
    assert data == snapshot


def _with_extra(where: str) -> tuple[dict[str, Any], Loc]:
    data = example()
    target: dict[str, Any]
    loc: Loc
    if where == "match":
        target, loc = data, ()
    elif where == "player":
        target, loc = p3(data), ("players", 2)
    elif where == "weapon":
        target, loc = p3(data)["weapons"]["dmr"], ("players", 2, "weapons", "dmr")
    else:
        target, loc = event0(data), ("events", 0)
    target["kils"] = 3
    return data, (*loc, "kils")


@pytest.mark.parametrize("where", ["match", "player", "weapon", "event"])
def test_unknown_fields_are_refused_by_name(where: str) -> None:
    # A misspelt counter must fail loudly rather than count as zero.
    data, loc = _with_extra(where)
    errors = errors_of(data)
    assert [(e.loc, e.type) for e in errors] == [(loc, "extra_forbidden")]
