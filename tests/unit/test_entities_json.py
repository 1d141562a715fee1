"""The rows' JSON (``storage.entities.dumps``/``loads``, orjson): what it writes, old code's
``json.loads`` reads as the same values, and it reads every row the ``json`` encoder
wrote; what it writes fits Table Storage's limits as the escaped text did."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from app.domain import codec
from app.domain import saga as s
from app.domain.aggregation import aggregate
from app.domain.stats import ServiceRecord, apply_fitted
from app.domain.validation import parse_match
from bench.floor import todays_json
from storage import entities as ent
from storage.saga_rows import MAX_PROPERTY_CHARS, log_entities
from tests.support.matches import random_match

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def old_dumps(value: Any) -> str:
    """What ``entities.dumps`` was: the standard library's compact, key-sorted JSON."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def played_record(matches: int, seed: int) -> tuple[ServiceRecord, list[dict[str, Any]]]:
    """A record after ``matches`` random matches, and the deltas' dicts."""
    rng = random.Random(seed)
    population = ["p-main", *(f"p-{i}" for i in range(40))]
    record, deltas = ServiceRecord("p-main"), []
    for i in range(matches):
        body = random_match(rng, f"m-{seed}-{i}", population, size=16)
        delta = aggregate(parse_match(body, None)).get("p-main")
        if delta is not None:
            record, took = apply_fitted(record, delta)
            deltas.append(took.to_dict())
    return record, deltas


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_records_and_deltas_are_written_as_before_and_read_alike(seed: int) -> None:
    record, deltas = played_record(60, seed)
    for value in [record.to_dict(), *deltas]:
        new = ent.dumps(value)
        assert new == old_dumps(value)  # ASCII and integers: the same characters
        assert ent.loads(new) == json.loads(new) == value
    assert ent.record_from_entity(ent.record_entity(record)) == record


def test_other_text_reads_the_same_in_old_and_new_code() -> None:
    events = [
        s.CompensationStarted("tricherie: résultat faussé 🎮", ("p-1",)),
        s.PlayerFailed("p-1", "délai dépassé"),
        s.RetryScheduled("p-1", 2, 1.5e-05),  # a float orjson writes in its own notation
    ]
    (row,) = log_entities("m-1", 1, events, AT)
    assert "🎮" in row["data"]  # as itself, not escaped
    written = [codec.event_to_dict(e) for e in events]
    assert json.loads(row["data"]) == ent.loads(row["data"]) == written
    # A row the json encoder wrote (escaped) reads the same.
    assert ent.loads(old_dumps(written)) == written


def test_what_orjson_refuses_is_written_and_read_as_before() -> None:
    odd = {"error": "half a pair: \ud800", "count": 2**70}
    assert ent.dumps(odd) == old_dumps(odd)
    assert ent.loads(ent.dumps(odd)) == odd


def test_a_log_row_fits_one_property_counted_in_utf16() -> None:
    # 60 events of 400 characters beyond the BMP: 25,000 characters, 49,000 UTF-16 units.
    reason = "🎮" * 400
    events = [s.PlayerDeadLettered(f"p-{i}", reason) for i in range(60)]
    rows = log_entities("m-1", 1, events, AT)
    assert len(rows) > 1
    assert all(ent.utf16_units(r["data"]) <= MAX_PROPERTY_CHARS for r in rows)
    assert [e for r in rows for e in _events(r["data"])] == events


def _events(data: str) -> list[s.SagaEvent]:
    value = ent.loads(data)
    return [codec.event_from_dict(v) for v in (value if isinstance(value, list) else [value])]


def test_the_storage_floor_encodes_its_rows_as_before() -> None:
    # Not a name a match can carry: it shows which encoder wrote the row.
    record = ServiceRecord("p-1", medals={"é": 1})
    assert "é" in ent.record_entity(record)["data"]
    with todays_json():
        assert "\\u00e9" in ent.record_entity(record)["data"]
    assert "é" in ent.record_entity(record)["data"]
