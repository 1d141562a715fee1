"""Random valid matches, and the totals a player must end with, computed independently of
the code under test (plain sums over the posted JSON)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

MODES = ("slayer", "ctf", "oddball", "koth")
MAPS = ("haven", "abandon", "adrift", "complex")
WEAPONS = ("battle_rifle", "dmr", "assault_rifle", "sniper_rifle", "shotgun")
MEDALS = ("double_kill", "triple_kill", "headshot", "assist_spree", "killjoy")
COUNTERS = (
    "score",
    "kills",
    "deaths",
    "assists",
    "headshots",
    "shots_fired",
    "shots_hit",
    "damage_dealt",
    "time_played_s",
)


def random_match(
    rng: random.Random,
    match_id: str,
    population: list[str],
    size: int | None = None,
    ended_at: datetime | None = None,
) -> dict[str, Any]:
    """A valid match of ``size`` (default 1-32) distinct players drawn from ``population``."""
    size = size or rng.randint(1, min(32, len(population)))
    players = rng.sample(population, size)
    ended = ended_at or datetime.now(UTC) - timedelta(minutes=rng.randint(1, 10_000))
    started = ended - timedelta(seconds=rng.randint(60, 1800))
    duration = int((ended - started).total_seconds())
    lines = []
    for pid in players:
        kills = rng.randint(0, 30)
        fired = rng.randint(0, 600)
        per_weapon: dict[str, dict[str, int]] = {}
        left = kills
        for weapon in rng.sample(WEAPONS, rng.randint(0, 3)):
            k = rng.randint(0, left)
            left -= k
            per_weapon[weapon] = {"kills": k, "headshots": rng.randint(0, k)}
        lines.append(
            {
                "player_id": pid,
                "team": rng.choice(["red", "blue"]),
                "outcome": rng.choice(["win", "loss", "tie", "dnf"]),
                "score": rng.randint(0, 5000),
                "kills": kills,
                "deaths": rng.randint(0, 30),
                "assists": rng.randint(0, 20),
                "headshots": rng.randint(0, kills),
                "shots_fired": fired,
                "shots_hit": rng.randint(0, fired),
                "damage_dealt": rng.randint(0, 20_000),
                "time_played_s": rng.randint(0, duration),
                "medals": {m: rng.randint(1, 3) for m in rng.sample(MEDALS, rng.randint(0, 3))},
                "weapons": per_weapon,
            }
        )
    return {
        "match_id": match_id,
        "mode": rng.choice(MODES),
        "map": rng.choice(MAPS),
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "ended_at": ended.isoformat().replace("+00:00", "Z"),
        "players": lines,
    }


def expected_totals(matches: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per player: counters, outcome counts, medals and weapons summed over ``matches``
    (matches without ``events``, whose reported weapons and medals count as they are)."""
    totals: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "counters": Counter(),
            "medals": Counter(),
            "weapons": defaultdict(Counter),
            "modes": defaultdict(Counter),
        }
    )
    outcome_key = {"win": "wins", "loss": "losses", "tie": "ties", "dnf": "dnf"}
    for match in matches:
        assert not match.get("events"), "expected_totals handles matches without events"
        for line in match["players"]:
            t = totals[line["player_id"]]
            for counters in (t["counters"], t["modes"][match["mode"]]):
                counters["matches"] += 1
                counters[outcome_key[line["outcome"]]] += 1
                for name in COUNTERS:
                    counters[name] += line.get(name, 0)
            t["medals"].update(line.get("medals", {}))
            for weapon, w in line.get("weapons", {}).items():
                t["weapons"][weapon].update(w)
    return totals


def mismatches(served: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """Where a served service record differs from the expected totals (empty: equal)."""
    problems = []
    for name, value in expected["counters"].items():
        if served.get(name) != value:
            problems.append(f"{name}: served {served.get(name)} != expected {value}")
    medals = {k: v for k, v in expected["medals"].items() if v}
    if served.get("medals") != medals:
        problems.append(f"medals: served {served.get('medals')} != expected {medals}")
    weapons = {
        w: {k: v for k, v in c.items()} for w, c in expected["weapons"].items() if any(c.values())
    }
    served_weapons = {
        w: {k: v for k, v in c.items() if v} for w, c in served.get("weapons", {}).items()
    }
    weapons = {w: {k: v for k, v in c.items() if v} for w, c in weapons.items()}
    if served_weapons != weapons:
        problems.append(f"weapons: served {served_weapons} != expected {weapons}")
    for mode, counters in expected["modes"].items():
        got = served.get("modes", {}).get(mode, {})
        for name, value in counters.items():
            if got.get(name) != value:
                problems.append(f"modes.{mode}.{name}: served {got.get(name)} != {value}")
    return problems


def one_sided(match: dict[str, Any]) -> dict[str, Any]:
    """``match`` with every player on one team: a match no rating ranks (it has no second
    side), so its saga starts without one (see ``ratings.is_rated``)."""
    return {**match, "players": [{**line, "team": "red"} for line in match["players"]]}
