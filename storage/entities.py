"""Row keys and entity mappers shared by the Table adapters and the in-memory ones (a
match's summary row: `summary_entities`; its log and delta rows: `saga_rows`).

The ``record`` row keeps the whole ``ServiceRecord`` as JSON in one string property
``data`` (with ``schema``): medals, weapons and modes are open-ended maps, so one column
per counter would drift towards the 252-property limit and need a schema change for
every new medal. The record is only ever read whole, so columns buy nothing. A string
property holds 64 KiB, far above a record with every weapon, medal and mode.

Times in the ``matches`` table are ISO-8601 strings: they round-trip exactly (the table's
DateTime type drops sub-100 ns precision and returns its own datetime subclass).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.domain.errors import PermanentError
from app.domain.saga import SagaState
from app.domain.stats import ServiceRecord, StatDelta, apply_fitted

RECORD_KEY = "record"
RECORD_SCHEMA = 1
MARKER_PREFIX = "m:"
MARKER_END = "m;"  # the character after ':' bounds the ``m:`` range of RowKeys
UNDO_PREFIX = "u:"
SUMMARY_KEY = "summary"
DELTA_PREFIX = "p:"
LOG_PREFIX = "log:"
LOG_END = "log;"
# Open-saga index: one row per match whose saga is not finished (with whether its start
# message is published yet), in a few partitions of the ``matches`` table ('~' cannot
# start a match id, so they never meet a match partition). The outbox sweeper and the
# stall sweeper read it instead of scanning the table.
OPEN_PREFIX = "~open-"
OPEN_SHARDS = 16
MAX_BATCH = 100  # Table Storage's limit of operations in one entity group transaction
# Table Storage's limits on one entity: a string property holds 64 KiB of UTF-16, an
# entity 1 MiB. Checked where rows that grow with input are built, so that the in-memory
# adapters refuse what Azure would, and a row past them is never sent half-written.
MAX_PROPERTY_BYTES = 64 * 1024
MAX_ENTITY_BYTES = 1024 * 1024
_FINISHED = {SagaState.COMPLETED, SagaState.COMPENSATED}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MARKER_RE = re.compile(r"m:\d{13}:.+", re.DOTALL)


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON: equal values give equal strings.

    orjson, about 8 times faster than ``json`` on a record (docs/performance.md). Where
    ``json.dumps`` wrote ASCII text and integers (ids, times, counters: all of a record)
    it writes the same characters; other text as itself rather than as ``\\u`` escapes,
    and floats (a retry's delay) maybe in another notation: either way every JSON reader,
    old code's ``json.loads`` included, reads the same values. What orjson refuses (a
    lone surrogate, an integer past 64 bits) is written by ``json``, as before."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """Inverse of ``dumps``, for rows of any version. orjson, and ``json`` for what only it
    reads (an escaped lone surrogate). Every integer stored is far inside the 64 bits that
    orjson reads exactly (a match adds at most 10^7 to a counter)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def utf16_units(text: str) -> int:
    """The length of ``text`` as Table Storage counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (a naive time is taken as UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(milliseconds=1)


def marker_key(delta: StatDelta) -> str:
    """``m:{inverted end ms}:{match}``: ascending RowKeys list the newest match first."""
    return f"{MARKER_PREFIX}{10**13 - epoch_ms(delta.ended_at):013d}:{delta.match_id}"


def undo_key(match_id: str) -> str:
    """RowKey of the compensation marker of one match."""
    return f"{UNDO_PREFIX}{match_id}"


def open_partition(match_id: str) -> str:
    """The open-saga index partition of a match: spread so that no partition is hot."""
    return f"{OPEN_PREFIX}{zlib.crc32(match_id.encode()) % OPEN_SHARDS:x}"


def open_partitions() -> list[str]:
    """Every open-saga index partition, for the sweepers."""
    return [f"{OPEN_PREFIX}{i:x}" for i in range(OPEN_SHARDS)]


def is_finished(state: SagaState) -> bool:
    """Completed or compensated: nothing more will happen unless an operator acts."""
    return state in _FINISHED


def log_key(seq: int) -> str:
    """RowKey of one saga log row; zero-padded so that RowKey order is seq order."""
    return f"{LOG_PREFIX}{seq:08d}"


def encode_token(row_key: str) -> str:
    """Opaque continuation token: the last RowKey served, urlsafe-base64."""
    return base64.urlsafe_b64encode(row_key.encode()).decode()


def decode_token(token: str) -> str:
    """The RowKey inside a continuation token; ``ValueError`` if it was not ours."""
    try:
        row_key = base64.urlsafe_b64decode(token.encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError) as error:
        raise ValueError("invalid continuation token: not one this API issued") from error
    if not _MARKER_RE.fullmatch(row_key):
        raise ValueError("invalid continuation token: not one this API issued")
    return row_key


def etag_of(meta: Mapping[str, Any]) -> str:
    """The etag in an entity's metadata or an operation's result."""
    etag = meta.get("etag")
    if not isinstance(etag, str):
        raise PermanentError(f"storage answered without an etag: {meta!r}")
    return etag


def fold(
    record: ServiceRecord, deltas: Iterable[StatDelta]
) -> tuple[ServiceRecord, list[StatDelta]]:
    """The record after every delta, in order, and each delta as the record took it (fitted
    to its bounds): what the history rows keep, so that a revert subtracts the same."""
    fitted: list[StatDelta] = []
    for delta in deltas:
        record, took = apply_fitted(record, delta)
        fitted.append(took)
    return record, fitted


def unique_by_match(deltas: Iterable[StatDelta]) -> tuple[list[StatDelta], list[str]]:
    """First delta of each match, and the match ids seen again (a batch holds a row once)."""
    seen: dict[str, StatDelta] = {}
    repeats: list[str] = []
    for delta in deltas:
        if delta.match_id in seen:
            repeats.append(delta.match_id)
        else:
            seen[delta.match_id] = delta
    return list(seen.values()), repeats


def checked(entity: dict[str, Any]) -> dict[str, Any]:
    """``entity`` itself, or ``PermanentError`` when Table Storage could not store it."""
    total = 0
    for name, value in entity.items():
        size = 2 * utf16_units(value) if isinstance(value, str) else 8
        if isinstance(value, str) and size > MAX_PROPERTY_BYTES:
            raise PermanentError(
                f"row {entity.get('PartitionKey')!r}/{entity.get('RowKey')!r}: property "
                f"{name!r} would hold {size} bytes; Table Storage holds at most "
                f"{MAX_PROPERTY_BYTES} (PropertyValueTooLarge)"
            )
        total += size + 2 * len(name) + 4
    if total > MAX_ENTITY_BYTES:
        raise PermanentError(
            f"row {entity.get('PartitionKey')!r}/{entity.get('RowKey')!r} would take "
            f"{total} bytes; Table Storage holds at most {MAX_ENTITY_BYTES} (EntityTooLarge)"
        )
    return entity


# ---- players ---------------------------------------------------------------------------


def record_entity(record: ServiceRecord) -> dict[str, Any]:
    """The ``record`` row. The ratings are a property of their own: a property holds at
    most 64 KiB, and the largest totals alone come close to that (test_record_bounds)."""
    data = record.to_dict()
    ratings = data.pop("ratings", None)
    entity = {
        "PartitionKey": record.player_id,
        "RowKey": RECORD_KEY,
        "data": dumps(data),
        "schema": RECORD_SCHEMA,
    }
    if ratings:
        entity["ratings"] = dumps(ratings)
    return checked(entity)


def record_from_entity(entity: Mapping[str, Any]) -> ServiceRecord:
    """Inverse of ``record_entity``."""
    data = loads(entity["data"])
    if entity.get("ratings"):
        data["ratings"] = loads(entity["ratings"])
    return ServiceRecord.from_dict(data)


def marker_entity(delta: StatDelta, void: bool) -> dict[str, Any]:
    """The ``m:`` row: history line and idempotency marker of one match."""
    return checked(
        {
            "PartitionKey": delta.player_id,
            "RowKey": marker_key(delta),
            "data": dumps(delta.to_dict()),
            "match_id": delta.match_id,
            "void": void,
        }
    )


def undo_entity(player_id: str, match_id: str) -> dict[str, Any]:
    """The ``u:`` row: the match was compensated for this player."""
    return {"PartitionKey": player_id, "RowKey": undo_key(match_id), "match_id": match_id}


def delta_from_entity(entity: Mapping[str, Any]) -> StatDelta:
    """The delta stored in an ``m:`` or ``p:`` row."""
    return StatDelta.from_dict(loads(entity["data"]))
