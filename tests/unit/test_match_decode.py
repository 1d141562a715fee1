"""The trusted decode of a canonical payload: ``Match.from_canonical`` gives back what
``parse_match`` gave for the body the canonical JSON was made from."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest

from app.domain.aggregation import aggregate
from app.domain.model import Match
from app.domain.validation import parse_match
from bench.workload import MatchGenerator, Playlist, Workload
from tests.support.matches import random_match


def a_match(players: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    population = [f"p{run}-{i}" for i in range(players)]
    return random_match(rng, f"m{run}", population, size=players)


def bench_bodies() -> list[dict[str, Any]]:
    out = []
    for events in (True, False):
        for playlist in (
            Playlist("16v16", 2, 16, 1.0, ("slayer",)),
            Playlist("ffa", 8, 1, 1, ("s",)),
        ):
            generator = MatchGenerator(Workload(events=events, seed=7), [playlist])
            out += [next(generator) for _ in range(3)]
    return out


@pytest.mark.parametrize("body", [a_match(8, seed) for seed in range(6)] + bench_bodies())
def test_a_canonical_payload_decodes_to_the_validated_match(body: dict[str, Any]) -> None:
    validated = parse_match(body, now=None)
    decoded = Match.from_canonical(json.loads(validated.canonical_json()))
    assert decoded == validated
    assert decoded.canonical_json() == validated.canonical_json()
    assert aggregate(decoded) == aggregate(validated)


def test_a_match_with_odd_events_decodes_to_the_validated_match() -> None:
    body = a_match(2, seed=3)
    a, b = (line["player_id"] for line in body["players"])
    body["events"] = [
        {"t": 1, "type": "kill", "killer": a, "victim": b, "weapon": "dmr"},
        {"t": 2.25, "type": "kill", "killer": a, "victim": a, "weapon": "dmr", "headshot": True},
        {"t": 3, "type": "flag_capture", "killer": b},
        {"t": 4.5, "type": "spawn"},
    ]
    body["started_at"] = "2026-01-01T10:00:00.123456+02:00"  # stored in UTC
    body["ended_at"] = "2026-01-01T08:20:00Z"
    validated = parse_match(body, now=None)
    decoded = Match.from_canonical(json.loads(validated.canonical_json()))
    assert decoded == validated and aggregate(decoded) == aggregate(validated)
