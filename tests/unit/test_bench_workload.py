"""The benchmark's load generator: valid matches of the playlist mix, Zipf popularity,
reproducible; and the percentiles it reports."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime

import pytest

from app.domain.aggregation import aggregate
from app.domain.validation import parse_match
from bench.measure import Latencies, percentile
from bench.workload import PLAYLISTS, MatchGenerator, Workload, mean_players


@pytest.mark.parametrize("events", [False, True])
def test_every_generated_match_is_accepted_by_validation(events: bool) -> None:
    generator = MatchGenerator(Workload(population=300, events=events, seed=3))
    sizes = {p.players for p in PLAYLISTS}
    for body in itertools.islice(generator, 300):
        match = parse_match(body, datetime.now(UTC))  # raises, naming the field, if not
        assert len(match.players) in sizes
        assert len({p.player_id for p in match.players}) == len(match.players)
        if events:
            # Kill events name players of the match and become per-weapon lines.
            kills = sum(1 for e in match.events if e.type == "kill")
            assert kills == sum(
                sum(w["kills"] for w in p["weapons"].values()) for p in body["players"]
            )
            assert (
                sum(sum(w["kills"] for w in d.weapons.values()) for d in aggregate(match).values())
                == kills
            )


def test_the_mix_follows_the_playlist_weights() -> None:
    generator = MatchGenerator(Workload(population=500, seed=5))
    sizes = Counter(len(b["players"]) for b in itertools.islice(generator, 4000))
    assert sizes[32] / 4000 == pytest.approx(0.10, abs=0.02)  # 16v16
    assert (sizes[8]) / 4000 == pytest.approx(0.60, abs=0.03)  # 4v4 and FFA of 8
    mean = sum(n * c for n, c in sizes.items()) / 4000
    assert mean == pytest.approx(mean_players(), rel=0.05)


def test_popularity_is_zipf_few_play_a_lot() -> None:
    generator = MatchGenerator(Workload(population=2000, zipf_s=1.1, seed=9))
    list(itertools.islice(generator, 2000))
    counts = [c for _, c in generator.played.most_common()]
    top = generator.played[generator.player_id(0)]
    assert top == counts[0]  # rank 0 is the most popular player
    assert top > 20 * counts[len(counts) // 2]  # far above the median player
    assert sum(counts[:20]) > 0.2 * sum(counts)  # 1% of players, over a fifth of the slots


def test_same_seed_same_load_another_seed_another() -> None:
    first = list(itertools.islice(MatchGenerator(Workload(population=100, seed=1)), 20))
    again = list(itertools.islice(MatchGenerator(Workload(population=100, seed=1)), 20))
    other = list(itertools.islice(MatchGenerator(Workload(population=100, seed=2)), 20))
    strip = [{k: v for k, v in b.items() if not k.endswith("_at")} for b in first]
    assert strip == [{k: v for k, v in b.items() if not k.endswith("_at")} for b in again]
    assert strip != [{k: v for k, v in b.items() if not k.endswith("_at")} for b in other]


def test_a_population_smaller_than_a_match_is_refused() -> None:
    with pytest.raises(ValueError, match="population"):
        MatchGenerator(Workload(population=31))


def test_percentiles_are_observed_values_by_nearest_rank() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert Latencies([0.001, 0.002, 0.010]).summary() == {
        "count": 3,
        "p50_ms": 2.0,
        "p95_ms": 10.0,
        "p99_ms": 10.0,
        "max_ms": 10.0,
    }
    assert Latencies().summary()["p99_ms"] is None
    with pytest.raises(ValueError):
        percentile([], 50)
