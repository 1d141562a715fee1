"""Memory held per active player grain in a shard's grain host, with realistic records.

    .venv/bin/python -m bench.grain_memory [--players 1000,5000,20000] [--matches-per-player 5]

Every player first gets a history (random matches, validated and aggregated as the service
does) written to a store; then a fresh ``PlayerGrainHost`` activates N grains, by reads or
by one more match, and the memory that adds is measured in fresh interpreters: tracemalloc
(traced bytes after 1,000, 5,000, ... activations in one host) and RSS (/proc/self/statm,
one subprocess per N).

Writes bench/results/<date>-grain-memory.json and .md and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import pickle
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from actors.grains import GrainSettings, PlayerGrainHost
from app.application.ports import (
    ApplyOutcome,
    HistoryEntry,
    HistoryPage,
    PlayerSnapshot,
    PlayerUpdate,
    RevertOutcome,
)
from app.domain.aggregation import aggregate
from app.domain.saga import Action
from app.domain.stats import ServiceRecord, StatDelta, sum_deltas
from app.domain.validation import parse_match
from bench.report import progress, write_results
from storage import entities as ent
from storage.memory import InMemoryPlayerStore
from tests.support.matches import random_match

ROOT = Path(__file__).resolve().parent.parent
# (store, variant) measured at every count, by both methods.
MAIN = (("table", "update"), ("table", "read"))
# Measured at the smallest count only, for comparison (bytes per grain do not depend on the
# count): the in-memory store's undercount. No RSS for it: production holds no store in the
# host's process. (A read of a player without a record activates no grain: nothing to
# measure there.)
CONTEXT = (("memory", "read"),)
ORDER = (("table", "read"), ("table", "update"), ("memory", "read"))
LABELS = {
    "read": "read",
    "update": "update (+1 match)",
    "table": "table codec",
    "memory": "InMemoryPlayerStore",
}


def player_id(i: int) -> str:
    """Player ``i``'s id, a new string per call as a request brings one (the host keeps it
    as its key)."""
    return f"player-{i:06d}"


class EntityPlayerStore:
    """Player records as the Table adapter sees them: one ``record`` entity per player,
    decoded on load and folded on apply as ``TablePlayerStore`` does, so that a grain holds
    objects of its own. Writes are not kept: in production they leave the process, and
    here that leaves the host as the only thing that grows."""

    def __init__(self, entities: Mapping[str, dict[str, Any]]) -> None:
        self._entities = dict(entities)
        self._etags = {pid: _etag() for pid in self._entities}
        self._fresh = _etag()

    async def load(self, player_id: str) -> PlayerSnapshot:
        """The decoded record and a fresh etag string (the SDK decodes one per response)."""
        entity = self._entities.get(player_id)
        if entity is None:
            return PlayerSnapshot(ServiceRecord(player_id), None)
        return PlayerSnapshot(ent.record_from_entity(entity), self._etags[player_id].decode())

    async def apply(self, snapshot: PlayerSnapshot, deltas: Sequence[StatDelta]) -> ApplyOutcome:
        """The folded record with a new etag, as ``TablePlayerStore.apply`` returns it."""
        pending, already = ent.unique_by_match(deltas)
        record, _ = ent.fold(snapshot.record, pending)
        applied = tuple(d.match_id for d in pending)
        return ApplyOutcome(PlayerSnapshot(record, self._fresh.decode()), applied, tuple(already))

    async def revert(self, snapshot: PlayerSnapshot, delta: StatDelta) -> RevertOutcome:
        """Not needed to activate grains."""
        raise NotImplementedError

    async def history(
        self, player_id: str, limit: int, continuation: str | None = None
    ) -> HistoryPage:
        """Not needed to activate grains."""
        raise NotImplementedError

    async def history_row(self, delta: StatDelta) -> HistoryEntry | None:
        """Not needed to activate grains."""
        raise NotImplementedError

    async def close(self) -> None:
        """Nothing to release."""


def _etag() -> bytes:
    # Table Storage's etag shape, as the response header brings it.
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%%3A%M%%3A%S.%f0Z")
    return f"W/\"datetime'{stamp}'\"".encode()


# ---- data, made once by the parent --------------------------------------------------------


def play(players: int, rounds: int, seed: int) -> list[list[StatDelta]]:
    """Each player's deltas, one per round: a round deals every player into one match of
    1-32 players, so everyone plays ``rounds`` matches."""
    rng = random.Random(seed)
    ids = [player_id(i) for i in range(players)]
    index = {pid: i for i, pid in enumerate(ids)}
    deltas: list[list[StatDelta]] = [[] for _ in ids]
    now = datetime.now(UTC)
    total, shown = rounds * players, -1
    for r in range(rounds):
        order = ids[:]
        rng.shuffle(order)
        start = 0
        while start < players:
            lineup = order[start : start + rng.randint(1, 32)]
            match = parse_match(random_match(rng, f"r{r}-m{start}", lineup, len(lineup)), now)
            for delta in aggregate(match).values():
                deltas[index[delta.player_id]].append(delta)
            start += len(lineup)
            done = r * players + start
            if done * 50 // total != shown:
                shown = done * 50 // total
                progress("matches", done, total)
    return deltas


def prepare(work: Path, players: int, history: int, seed: int, few: int) -> dict[str, Any]:
    """Write record entities and update messages for ``players``, and the histories of the
    ``few`` first, to ``work``; returns what the records look like."""
    deltas = play(players, history + 1, seed)  # the last round is the update variant's match
    records = [sum_deltas(player_id(i), d[:history]) for i, d in enumerate(deltas)]
    entities = {r.player_id: ent.record_entity(r) for r in records}
    # Pickled one by one, as Ray hands a shard its call: decoded per call in the child.
    updates = [pickle.dumps(PlayerUpdate(Action.APPLY, d[history])) for d in deltas]
    for name, value in (
        ("histories", [d[:history] for d in deltas[:few]]),
        ("entities", entities),
        ("updates", updates),
    ):
        (work / f"{name}.pkl").write_bytes(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
    data = sorted(len(e["data"].encode()) for e in entities.values())
    sizes = sorted(entity_bytes(e) for e in entities.values())
    return {
        "matches_per_player": history,
        "data_json_bytes": _spread(data),
        "entity_bytes": _spread(sizes),
        "mean_medals": round(statistics.fmean(len(r.medals) for r in records), 2),
        "mean_weapons": round(statistics.fmean(len(r.weapons) for r in records), 2),
        "mean_modes": round(statistics.fmean(len(r.modes) for r in records), 2),
    }


def entity_bytes(entity: Mapping[str, Any]) -> int:
    """Size by Table Storage's published formula: 4 + 2 * len(PartitionKey + RowKey), and
    per property 8 + 2 * len(name) + value (string: 4 + 2 * len; Int32: 4)."""
    size = 4 + 2 * len(entity["PartitionKey"] + entity["RowKey"])
    for name, value in entity.items():
        if name not in ("PartitionKey", "RowKey"):
            size += 8 + 2 * len(name) + (4 + 2 * len(value) if isinstance(value, str) else 4)
    return size


def _spread(values: list[int]) -> dict[str, int]:
    return {
        "median": values[len(values) // 2],
        "p95": values[len(values) * 95 // 100],
        "max": values[-1],
    }


# ---- one measurement, in a fresh interpreter ----------------------------------------------


def traced_bytes() -> int:
    """Bytes in blocks traced by tracemalloc now."""
    return tracemalloc.get_traced_memory()[0]


def rss_bytes() -> int:
    """Resident set size now (Linux); elsewhere the peak, which only grows here anyway."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


async def open_store(
    kind: str, work: Path, players: int
) -> EntityPlayerStore | InMemoryPlayerStore:
    """The warmed-up store: the history of each of the first ``players`` is in it."""
    if kind == "table":
        return EntityPlayerStore(pickle.loads((work / "entities.pkl").read_bytes()))
    store = InMemoryPlayerStore()
    for deltas in pickle.loads((work / "histories.pkl").read_bytes())[:players]:
        # One apply writes the whole folded history (only the last match gets a marker):
        # activations read only the record, and this is half the deep copies of a full one.
        first = PlayerSnapshot(sum_deltas(deltas[0].player_id, deltas[:-1]))
        await store.apply(first, deltas[-1:])
    return store


async def activate(
    host: PlayerGrainHost, variant: str, updates: Sequence[bytes], start: int, stop: int
) -> None:
    """Activate the grains of players ``start``..``stop - 1`` one after another."""
    for i in range(start, stop):
        if variant == "update":
            (result,) = await host.update([pickle.loads(updates[i])])
            if not result.changed:
                raise RuntimeError(f"update of {result.player_id} failed: {result.error}")
        else:
            await host.service_record(player_id(i))


async def measure(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Bytes added by activating grains up to each count in ``spec["players"]``."""
    work, variant, counts = Path(spec["data"]), spec["variant"], sorted(spec["players"])
    store = await open_store(spec["store"], work, counts[-1])
    updates: list[bytes] = []
    if variant == "update":
        updates = pickle.loads((work / "updates.pkl").read_bytes())
    settings = GrainSettings(capacity=counts[-1], idle_ttl_s=3600.0)
    # The first calls allocate once-only things (lazy imports, caches): not grains. (The
    # measured host applies these updates again: this store keeps no markers.)
    await activate(PlayerGrainHost(store, settings), variant, updates, 0, min(16, counts[-1]))
    reading: Callable[[], int] = rss_bytes
    if spec["method"] == "tracemalloc":
        tracemalloc.start()
        reading = traced_bytes
    gc.collect()
    base = reading()
    host = PlayerGrainHost(store, settings)
    rows: list[dict[str, Any]] = []
    done, seconds = 0, 0.0
    for n in counts:
        start = time.perf_counter()
        await activate(host, variant, updates, done, n)
        seconds += time.perf_counter() - start
        done = n
        gc.collect()
        if host.stats()["active"] != n:
            raise RuntimeError(f"{host.stats()['active']} grains active, expected {n}")
        added = reading() - base
        rows.append(
            {
                **{k: spec[k] for k in ("method", "store", "variant")},
                "players": n,
                "bytes": added,
                "bytes_per_grain": round(added / n),
            }
        )
        if spec["method"] == "rss":  # tracemalloc slows every allocation: no rate there
            rows[-1]["activations_per_s"] = round(n / seconds)
    if spec["method"] == "tracemalloc":
        # What deactivation gives back: the bytes really were the grains'. (RSS is not
        # asked: freed memory mostly stays in the process's arenas.)
        held = reading()
        host.deactivate()
        gc.collect()
        rows[-1]["freed_by_deactivate_per_grain"] = round((held - reading()) / counts[-1])
        tracemalloc.stop()
    return rows


# ---- the parent ---------------------------------------------------------------------------


def run_child(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """One measurement in a fresh interpreter, so that each starts from the same heap."""
    command = [sys.executable, "-m", "bench.grain_memory", "--child", json.dumps(spec)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"measurement {spec} failed:\n{done.stderr}")
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def job(work: str, method: str, case: tuple[str, str], players: list[int]) -> dict[str, Any]:
    """The spec of one measurement (``measure`` reads it in the child)."""
    store, variant = case
    return {"data": work, "method": method, "store": store, "variant": variant, "players": players}


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Prepare the data, then run every measurement, ``args.workers`` at a time."""
    counts = sorted(set(args.players))
    with tempfile.TemporaryDirectory(prefix="grainbench-") as work:
        record = prepare(Path(work), counts[-1], args.matches_per_player, args.seed, counts[0])
        # Longest first, to keep the workers busy.
        jobs = [job(work, "tracemalloc", case, counts) for case in MAIN]
        jobs += [job(work, "rss", case, [n]) for n in reversed(counts) for case in MAIN]
        jobs += [job(work, "tracemalloc", case, counts[:1]) for case in CONTEXT]
        runs: list[dict[str, Any]] = []
        progress("measurements", 0, len(jobs))
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(run_child, spec) for spec in jobs]
            for finished, future in enumerate(as_completed(futures), start=1):
                runs += future.result()
                progress("measurements", finished, len(jobs))
    runs.sort(key=lambda r: (ORDER.index((r["store"], r["variant"])), r["players"], r["method"]))
    parameters = {
        "players": counts,
        "matches_per_player": args.matches_per_player,
        "seed": args.seed,
        "workers": args.workers,
    }
    return {"parameters": parameters, "record": record, "runs": runs}


def report(results: dict[str, Any]) -> str:
    """The Markdown table, with the record size and a full host for context."""
    cells: dict[tuple[str, str, int], dict[str, Any]] = {}
    for r in results["runs"]:
        cells.setdefault((r["store"], r["variant"], r["players"]), {})[r["method"]] = r
    lines = [
        "| store (load path) | activated by | grains | tracemalloc B/grain | RSS B/grain |",
        "|---|---|---:|---:|---:|",
    ]
    for (store, variant, n), by in cells.items():
        traced, rss = (_per_grain(by.get(m)) for m in ("tracemalloc", "rss"))
        lines.append(f"| {LABELS[store]} | {LABELS[variant]} | {n:,} | {traced} | {rss} |")
    rec = results["record"]
    largest = max(results["parameters"]["players"])
    read = cells[("table", "read", largest)]["tracemalloc"]
    per_grain, freed = read["bytes_per_grain"], read["freed_by_deactivate_per_grain"]
    capacity = GrainSettings().capacity
    return "\n".join(
        [
            f"Records after {rec['matches_per_player']} matches per player: `data` JSON "
            f"{rec['data_json_bytes']['median']:,} B median ({rec['data_json_bytes']['p95']:,}"
            f" p95), table entity {rec['entity_bytes']['median']:,} B median by the Table "
            f"size formula; on average {rec['mean_medals']} medals, {rec['mean_weapons']} "
            f"weapons, {rec['mean_modes']} modes.",
            "",
            *lines,
            "",
            f"A host at the default capacity ({capacity:,} grains) holds about "
            f"{per_grain * capacity / 2**20:.0f} MiB of such grains (tracemalloc, read, "
            f"table codec); `deactivate()` gives back {freed:,} B of the {per_grain:,} B "
            "per grain.",
        ]
    )


def _per_grain(row: dict[str, Any] | None) -> str:
    return "-" if row is None else f"{row['bytes_per_grain']:,}"


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=_counts, default=[1000, 5000, 20000])
    parser.add_argument("--matches-per-player", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one measurement, JSON spec
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(asyncio.run(measure(json.loads(arguments.child)))))
        sys.exit(0)
    outcome = main(arguments)
    write_results("grain-memory", "Memory per active player grain", outcome, report(outcome))
