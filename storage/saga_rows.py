"""The rows of a saga's partition besides its summary: the ``log:`` rows of a save and the
``p:`` rows of its deltas, packed as few to a row as one string property holds, and the
bound that keeps a save inside one entity group transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from app.domain import codec
from app.domain.errors import PermanentError
from app.domain.saga import SagaEvent
from app.domain.stats import StatDelta
from storage import entities as ent

# A string property holds 64 KiB of UTF-16: 32,768 code units (counted as such: text
# beyond the BMP takes two); room kept.
MAX_PROPERTY_CHARS = 30_000
# Rows of the deltas (``p:`` then a chunk number: no player id starts with ``+``).
DELTAS_KEY = f"{ent.DELTA_PREFIX}+"


def log_entities(
    match_id: str, first_seq: int, events: Sequence[SagaEvent], at: datetime
) -> list[dict[str, Any]]:
    """The ``log:`` rows of one save: its events together, in as few rows as their size
    allows (a row is keyed by the seq of its first event; one event is stored as an object,
    several as a list). One row per event made a 32-player save 35 rows (bench)."""
    rows = []
    for start, chunk in _chunks([codec.event_to_dict(e) for e in events]):
        rows.append(
            {
                "PartitionKey": match_id,
                "RowKey": ent.log_key(first_seq + start),
                "data": ent.dumps(chunk[0] if len(chunk) == 1 else chunk),
                "type": chunk[0]["type"] if len(chunk) == 1 else "batch",
                "at": at.isoformat(),
            }
        )
    return rows


def delta_entities(match_id: str, deltas: Mapping[str, StatDelta]) -> list[dict[str, Any]]:
    """The ``p:`` rows: every player's delta, as few rows as their size allows."""
    items = [{"player_id": pid, **d.to_dict()} for pid, d in deltas.items()]
    return [
        {"PartitionKey": match_id, "RowKey": f"{DELTAS_KEY}{i:03d}", "deltas": ent.dumps(chunk)}
        for i, (_, chunk) in enumerate(_chunks(items))
    ]


def _chunks(items: list[dict[str, Any]]) -> list[tuple[int, list[dict[str, Any]]]]:
    """``items`` split in order into runs whose JSON fits one string property; each with
    the index of its first item."""
    out: list[tuple[int, list[dict[str, Any]]]] = []
    size = 0
    for i, item in enumerate(items):
        n = ent.utf16_units(ent.dumps(item)) + 1
        if n > MAX_PROPERTY_CHARS:
            # The ingest bounds keep a delta or an event far below this: a bug if reached.
            what = item.get("type") or item.get("player_id")
            raise PermanentError(f"a saga row item ({what!r}) of {n} characters is too large")
        if not out or size + n > MAX_PROPERTY_CHARS:
            out.append((i, []))
            size = 0
        out[-1][1].append(item)
        size += n
    return out


def save_size(events: Sequence[SagaEvent], deltas: Mapping[str, StatDelta] | None) -> int:
    """Rows in the transaction of one save (for adapters that keep no rows)."""
    return checked_size(
        1
        + len(_chunks([codec.event_to_dict(e) for e in events]))
        + len(_chunks([d.to_dict() for d in (deltas or {}).values()]))
    )


def checked_size(size: int) -> int:
    """``ValueError`` above the batch limit (splitting a save would break the atomicity
    of state + log)."""
    if size > ent.MAX_BATCH:
        raise ValueError(f"a save is one transaction of at most {ent.MAX_BATCH} rows, got {size}")
    return size


def deltas_of(rows: Iterable[Mapping[str, Any]]) -> dict[str, StatDelta]:
    """``p:`` rows as ``{player_id: delta}``: packed ``p:+NNN`` rows, and the rows of one
    player each that were written before the deltas were packed."""
    found: dict[str, StatDelta] = {}
    for r in rows:
        if r.get("deltas"):
            for item in ent.loads(r["deltas"]):
                found[item.pop("player_id")] = StatDelta.from_dict(item)
        else:
            found[r["RowKey"][len(ent.DELTA_PREFIX) :]] = ent.delta_from_entity(r)
    return found
