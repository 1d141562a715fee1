"""A service record stays inside Table Storage's limits whatever is posted: names past its
bounds count in ``_other``, a revert subtracts what the record took, and the largest record
and history row that can exist still fit one property."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import stats
from app.domain.errors import MAX_ERROR_CHARS, PermanentError, clip_error
from app.domain.ids import MAX_ID_LENGTH
from app.domain.model import Outcome
from app.domain.ratings import RatingChange, RatingDelta, SkillRating
from app.domain.stats import (
    MAX_RECORD_MEDALS,
    MAX_RECORD_MODES,
    MAX_RECORD_WEAPONS,
    OTHER,
    RECORD_COUNTERS,
    ServiceRecord,
    StatDelta,
    apply_fitted,
    delta_counters,
    fit_delta,
    revert_delta,
    sum_deltas,
)
from app.domain.validation import MAX_NAMED_ENTRIES
from storage import entities as ent

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BIGGEST = 2**63 - 1  # an Int64 counter: no lifetime total can print longer


def name(kind: str, i: int) -> str:
    return f"{kind}{i:05d}".ljust(MAX_ID_LENGTH, "z")


def delta(
    n: int, weapons: list[str] = (), medals: list[str] = (), mode: str = "slayer"
) -> StatDelta:
    return StatDelta(
        match_id=f"m{n}",
        player_id="p",
        mode=mode,
        map="haven",
        ended_at=T0 + timedelta(minutes=n),
        outcome=Outcome.WIN,
        team=None,
        counters=delta_counters(Outcome.WIN, {"kills": 3 * len(weapons)}),
        medals=dict.fromkeys(medals, 2),
        weapons={w: {"kills": 3, "headshots": 1} for w in weapons},
    )


# The longest a rating prints: mu and sigma with every digit of their millionths.
LONGEST_RATING = SkillRating(mu=-123456.123456, sigma=123456.123456, matches=BIGGEST)


def test_the_largest_possible_record_fits_one_property() -> None:
    line = dict.fromkeys(RECORD_COUNTERS, BIGGEST)
    record = ServiceRecord(
        player_id=name("p", 0),
        counters=line,
        medals={**{name("m", i): BIGGEST for i in range(MAX_RECORD_MEDALS)}, OTHER: BIGGEST},
        weapons={
            **{name("w", i): {"kills": BIGGEST, "headshots": BIGGEST} for i in range(64)},
            OTHER: {"kills": BIGGEST, "headshots": BIGGEST},
        },
        modes={**{name("g", i): line for i in range(MAX_RECORD_MODES)}, OTHER: line},
        first_played=T0,
        last_played=T0,
        ratings={
            **{name("g", i): LONGEST_RATING for i in range(MAX_RECORD_MODES)},
            OTHER: LONGEST_RATING,
        },
    )
    row = ent.record_entity(record)  # raises past the limit
    assert len(row["data"].encode("utf-16-le")) <= ent.MAX_PROPERTY_BYTES
    assert len(row["ratings"].encode("utf-16-le")) <= ent.MAX_PROPERTY_BYTES
    assert ent.record_from_entity(row) == record


def test_the_largest_possible_history_row_fits_one_property() -> None:
    # Validation lets a line hold 64 medals (+ the multi-kill ladder) and 64 weapons.
    biggest = StatDelta(
        match_id=name("m", 0),
        player_id=name("p", 0),
        mode=name("g", 0),
        map=name("a", 0),
        ended_at=T0,
        outcome=Outcome.DNF,
        team=name("t", 0),
        counters=dict.fromkeys(RECORD_COUNTERS, BIGGEST),
        medals={name("m", i): BIGGEST for i in range(MAX_NAMED_ENTRIES + 9)},
        weapons={name("w", i): {"kills": BIGGEST, "headshots": BIGGEST} for i in range(64)},
        mode_key=OTHER,
        rating=RatingChange(LONGEST_RATING, RatingDelta(-123456.123456, -123456.123456)),
    )
    assert MAX_NAMED_ENTRIES <= MAX_RECORD_WEAPONS
    ent.marker_entity(biggest, False)


def test_a_row_past_the_property_limit_is_refused_naming_it() -> None:
    with pytest.raises(PermanentError, match="'data' would hold 65538 bytes"):
        ent.checked({"PartitionKey": "p", "RowKey": "record", "data": "x" * 32_769})


def test_names_past_the_bounds_count_in_other_and_known_ones_stay_named() -> None:
    full = sum_deltas("p", [delta(1, [name("w", i) for i in range(MAX_RECORD_WEAPONS)])])
    fitted = fit_delta(full, delta(2, [name("w", 0), name("x", 1), name("x", 2)]))
    assert fitted.weapons == {
        name("w", 0): {"kills": 3, "headshots": 1},
        OTHER: {"kills": 6, "headshots": 2},
    }
    assert fitted.counters == delta(2).counters | {"kills": 9}
    assert fit_delta(full, fitted) == fitted  # fitting twice changes nothing


def test_a_mode_past_the_bound_counts_in_other_and_history_keeps_its_name() -> None:
    modes = [delta(i, mode=name("g", i)) for i in range(MAX_RECORD_MODES)]
    record = sum_deltas("p", modes)
    late = delta(99, mode="grifball")
    record, fitted = apply_fitted(record, late)
    assert fitted.mode == "grifball" and fitted.mode_key == OTHER
    assert record.modes[OTHER]["matches"] == 1 and "grifball" not in record.modes
    assert StatDelta.from_dict(fitted.to_dict()) == fitted
    assert "mode_key" not in delta(1).to_dict()  # rows of unbounded matches are as before


def test_error_texts_are_clipped_and_say_so() -> None:
    assert clip_error("short") == "short"
    long = clip_error("x" * 100_000)
    assert len(long) == MAX_ERROR_CHARS and long.endswith("... (100000 characters in all)")


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_any_applies_and_reverts_keep_totals_exact_and_nothing_negative(seed: int) -> None:
    """With bounds of 3, random matches naming a few of 8 weapons, medals and modes, applied
    and voided in random order: the record equals the record of the matches still counted
    taken in order, every total is exact, and no entry goes below zero."""
    rng = random.Random(seed)
    with pytest.MonkeyPatch.context() as patch:
        for bound in ("MAX_RECORD_WEAPONS", "MAX_RECORD_MEDALS", "MAX_RECORD_MODES"):
            patch.setattr(stats, bound, 3)
        record = ServiceRecord("p")
        kept: dict[str, StatDelta] = {}  # match id -> as the record took it
        posted: dict[str, StatDelta] = {}
        for n in range(rng.randint(1, 25)):
            if kept and rng.random() < 0.3:
                gone = rng.choice(sorted(kept))
                record = revert_delta(record, kept.pop(gone))
                posted.pop(gone)
                continue
            d = delta(
                n,
                rng.sample([f"w{i}" for i in range(8)], rng.randint(0, 4)),
                rng.sample([f"m{i}" for i in range(8)], rng.randint(0, 4)),
                f"g{rng.randint(0, 7)}",
            )
            record, kept[d.match_id] = apply_fitted(record, d)
            posted[d.match_id] = d
        rest = list(posted.values())
        assert record.counters["kills"] == sum(d.counters["kills"] for d in rest)
        assert sum(w["kills"] for w in record.weapons.values()) == sum(
            w["kills"] for d in rest for w in d.weapons.values()
        )
        assert sum(record.medals.values()) == sum(v for d in rest for v in d.medals.values())
        assert sum(m["matches"] for m in record.modes.values()) == len(rest)
        for entries in (record.medals, record.weapons, record.modes):
            assert len([k for k in entries if k != OTHER]) <= 3
        assert all(v >= 0 for v in record.medals.values())
        assert all(v >= 0 for w in record.weapons.values() for v in w.values())
        assert all(v >= 0 for m in record.modes.values() for v in m.values())
