"""The storage floor: the player writes of the same matches, each the same entity group
transaction the service makes (``TablePlayerStore.apply``: the match's history row and
the record), issued straight at Azure Table Storage with the worker's concurrency. No
API, no bus, no Ray, no saga log: what the storage and its SDK allow, the ceiling the
end-to-end number is compared with."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from app.application.ports import PlayerSnapshot
from app.domain.aggregation import aggregate
from app.domain.stats import ServiceRecord, StatDelta
from app.domain.validation import parse_match
from bench.measure import Latencies
from storage import entities as ent
from storage.tables import open_table_storage


@dataclass(frozen=True, slots=True)
class FloorResult:
    """Player writes made, in how long, their latencies, and the client's CPU per write."""

    matches: int
    updates: int
    seconds: float
    latencies: Latencies
    client_cpu_ms: float

    @property
    def updates_per_s(self) -> float:
        """Player updates per second."""
        return self.updates / self.seconds if self.seconds else 0.0


def _stdlib_dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@contextlib.contextmanager
def todays_json() -> Iterator[None]:
    """The rows' JSON encoded by the standard library while the block runs, as statsaga's
    own write encoded it when the floor was fixed (issue 21): the service's faster
    encoder (orjson, ``storage.entities.dumps``) must show as a higher ratio to the floor,
    not as a higher floor. The same characters either way (ids, times and counters)."""
    kept = ent.dumps
    ent.dumps = _stdlib_dumps
    try:
        yield
    finally:
        ent.dumps = kept


def deltas_of(body: dict[str, Any]) -> list[StatDelta]:
    """The per-player deltas the service would compute for a posted match."""
    return list(aggregate(parse_match(body, None)).values())


async def storage_floor(
    connection_string: str,
    prefix: str,
    matches: Iterator[dict[str, Any]],
    seconds: float,
    concurrency: int,
    report: Callable[[float], None] = lambda share: None,
) -> FloorResult:
    """Apply matches from ``matches`` for ``seconds``, ``concurrency`` matches at a time,
    each fanning out to its players at once; a player's writes are in turn, as its grain
    makes them. Records stay cached, as in a warm grain (no read before a write)."""
    storage = await open_table_storage(connection_string, prefix)
    snapshots: dict[str, PlayerSnapshot] = {}
    turns: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
    latencies = Latencies()
    counts = {"matches": 0, "updates": 0}

    async def write(delta: StatDelta) -> None:
        pid = delta.player_id
        async with turns[pid]:
            snapshot = snapshots.get(pid) or PlayerSnapshot(ServiceRecord(pid), None)
            began = time.perf_counter()
            outcome = await storage.players.apply(snapshot, [delta])
            latencies.add(time.perf_counter() - began)
            snapshots[pid] = outcome.snapshot
            counts["updates"] += 1

    async def lane(deadline: float) -> None:
        while time.perf_counter() < deadline:
            body = next(matches)
            await asyncio.gather(*(write(d) for d in deltas_of(body)))
            counts["matches"] += 1

    cpu, start = time.process_time(), time.perf_counter()
    deadline = start + seconds

    async def ticker() -> None:
        while time.perf_counter() < deadline:
            report(min((time.perf_counter() - start) / seconds, 1.0))
            await asyncio.sleep(0.5)

    try:
        tick = asyncio.create_task(ticker())
        with todays_json():
            await asyncio.gather(*(lane(deadline) for _ in range(concurrency)))
        tick.cancel()
        report(1.0)
        elapsed = time.perf_counter() - start
        cpu_ms = (time.process_time() - cpu) * 1000 / max(counts["updates"], 1)
    finally:
        await storage.close()
    return FloorResult(counts["matches"], counts["updates"], elapsed, latencies, cpu_ms)
