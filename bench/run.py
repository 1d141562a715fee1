"""``statsaga bench``: the whole benchmark in one run, against a local stack it starts.

1. storage floor: the same player transactions straight at Azurite;
2. end to end, sustained: POST -> consistent, with the worker's default concurrency;
3. open loop at half that rate: ingest latency and time to consistency;
4. service-record reads, warm grains and cold;
5. scaling: the sustained rate at 1, 2, 4 and 8 player shards (resized while running);
6. 10% storage faults in the worker and its actors: convergence, retries, and every
   record checked against what was posted.

Writes ``<date>-<name>.json``, ``.md`` and two PNG plots (``bench/results`` by default).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.domain.codec import event_to_dict
from bench.cpu import cpu_by_kind, share
from bench.floor import storage_floor
from bench.load import (
    Api,
    Finished,
    FinishedCount,
    Tracker,
    board_loop,
    open_loop,
    read_each,
    read_loop,
    saturate,
    scrape,
    total,
    updates_per_s,
)
from bench.measure import Latencies
from bench.profile import hottest, sampling
from bench.report import RESULTS, progress
from bench.stack import Dependencies, Deployment, dependencies, start_deployment, stop_all
from bench.workload import PLAYLISTS, MatchGenerator, Workload, mean_players
from storage.tables import TableStorage, open_table_storage


@dataclass(frozen=True, slots=True)
class Plan:
    """How long each phase runs (seconds) and how big the load is."""

    name: str
    floor_s: float
    sustain_s: float
    open_s: float
    read_s: float
    scale_s: float
    fault_s: float
    cold_reads: int
    shards: tuple[int, ...] = (1, 2, 4, 8)
    # The floor's matches in flight: 32, as when the floor was fixed (issue 21).
    concurrency: int = 32
    # Sagas the worker runs at once: the service's default. At 32, as the floor, the
    # service left a sixth of the cores idle with the window full (docs/performance.md).
    worker_concurrency: int = 64
    window: int = 64  # matches kept in flight by the closed loop
    fault_rate: float = 0.1


QUICK = Plan("quick", 6, 10, 10, 4, 5, 8, 150)
FULL = Plan("full", 30, 60, 60, 20, 30, 30, 1000)
# Every phase, briefly: what the test suite runs to keep the benchmark working.
SMOKE = Plan("smoke", 2, 3, 3, 1, 2, 3, 20, shards=(2,), window=8)
PLANS = {p.name: p for p in (QUICK, FULL, SMOKE)}
PHASES = 6


class Bar:
    """Phase ``i`` of ``PHASES``: a progress bar per phase, on stderr."""

    def __init__(self) -> None:
        self.phase = 0
        self.starts: dict[str, float] = {}

    def seconds(self) -> dict[str, float]:
        """How long each phase took (until the next began, the last until now)."""
        marks = [*self.starts.values(), time.monotonic()]
        return {k: round(marks[i + 1] - t, 1) for i, (k, t) in enumerate(self.starts.items())}

    def __call__(self, label: str) -> Callable[[float], None]:
        self.phase += 1
        self.starts[label.split(",")[0]] = time.monotonic()
        title = f"{self.phase}/{PHASES} {label}"

        shown = -1

        def report(share: float) -> None:
            nonlocal shown
            done = round(min(max(share, 0.0), 1.0) * 100)
            if done != shown:  # redraw only what changed
                shown = done
                progress(title, done, 100)

        return report

    def note(self, text: str) -> None:
        """A phase's outcome, under its bar."""
        print(f"\r\033[K    {text}", file=sys.stderr, flush=True)


def rates(finished: list[Finished], posted: list[str]) -> dict[str, Any]:
    """Matches and player updates per second of a closed-loop run (``posted``: its ids)."""
    players = sum(f.players for f in finished)
    per_s = updates_per_s(finished)
    return {
        "matches": len(finished),
        "player_updates": players,
        "player_updates_per_s": round(per_s, 1),
        "matches_per_s": round(per_s * len(finished) / max(players, 1), 2),
        "unfinished": len(posted) - len(finished),
    }


def consistency(finished: list[Finished]) -> Latencies:
    """Time to consistency of each match."""
    return Latencies([f.consistency_s for f in finished])


async def _sustained(
    api: Api,
    tracker: Tracker,
    matches: Iterator[dict[str, Any]],
    seconds: float,
    plan: Plan,
    bar: Callable[[float], None],
    finished: FinishedCount,
    profile: Path | None = None,
) -> dict[str, Any]:
    before, began = cpu_by_kind(), time.monotonic()
    with sampling(profile, seconds) if profile else contextlib.nullcontext():
        ids = await saturate(api, tracker, matches, seconds, plan.window, bar, finished)
    # While the window was full; reading the saga log back afterwards is not the service's.
    cores = share(before, cpu_by_kind(), time.monotonic() - began)
    await tracker.wait_all(120)
    return {**rates(tracker.take(ids), ids), "cores": cores}


async def main_phases(
    deps: Dependencies, plan: Plan, workload: Workload, profile: Path | None = None
) -> dict[str, Any]:
    """Every phase; the result document. With ``profile``, the sustained phase is sampled
    with py-spy (collapsed stacks kept there)."""
    bar = Bar()
    out: dict[str, Any] = {
        "plan": dataclasses.asdict(plan),
        "workload": dataclasses.asdict(workload),
    }
    out["workload"]["mean_players_per_match"] = round(mean_players(), 2)
    conn = deps.azurite.connection_string
    prefix = "bench"
    floor_matches = MatchGenerator(replace(workload, prefix="f"))
    before, began = cpu_by_kind(), time.monotonic()
    floor = await storage_floor(
        conn, prefix, floor_matches, plan.floor_s, plan.concurrency, bar("storage floor")
    )
    out["floor"] = {
        "player_updates": floor.updates,
        "player_updates_per_s": round(floor.updates_per_s, 1),
        "seconds": round(floor.seconds, 2),
        "write": floor.latencies.summary(),
        "client_cpu_ms_per_write": round(floor.client_cpu_ms, 2),
        "cores": share(before, cpu_by_kind(), time.monotonic() - began),
    }
    bar.note(f"{floor.updates_per_s:,.1f} player updates/s")
    settings = {"STATSAGA_WORKER_CONCURRENCY": str(plan.worker_concurrency)}
    deployment = start_deployment(deps, prefix, settings)
    storage = await open_table_storage(conn, prefix)
    api = Api(deployment.api_url)
    finished = FinishedCount(_metrics_url(deployment))
    try:
        # The floor's players are in storage, and no grain has loaded them: cold reads.
        cold = list(floor_matches.played)[: plan.cold_reads]
        await _service_phases(out, api, storage, finished, plan, workload, cold, bar, profile)
    finally:
        await finished.close()
        await api.close()
        await storage.close()
        deployment.stop()
    out["faults"] = await _fault_phase(deps, plan, workload, out, bar("10% storage faults"))
    out["phase_s"] = bar.seconds()
    return out


async def _service_phases(
    out: dict[str, Any],
    api: Api,
    storage: TableStorage,
    count: FinishedCount,
    plan: Plan,
    workload: Workload,
    cold_players: list[str],
    bar: Bar,
    profile: Path | None,
) -> None:
    tracker = Tracker(storage.sagas)
    matches = MatchGenerator(replace(workload, prefix="e"))
    # Warm-up, not counted: actors start their storage clients, connections open.
    warm = [next(matches) for _ in range(8)]
    for body in warm:
        tracker.posted(body, time.time())
    await asyncio.gather(*(api.post_match(b) for b in warm))
    await tracker.wait_all(60)
    report = bar("end to end, sustained")
    samples = profile / "py-spy" if profile else None
    sustained = await _sustained(
        api, tracker, matches, plan.sustain_s, plan, report, count, samples
    )
    if samples:
        out["profile"] = hottest(samples)
    sustained["ratio_to_floor"] = round(
        sustained["player_updates_per_s"] / max(out["floor"]["player_updates_per_s"], 1e-9), 2
    )
    out["end_to_end"] = sustained
    bar.note(
        f"{sustained['player_updates_per_s']:,.1f} player updates/s, "
        f"{sustained['ratio_to_floor']} of the floor"
    )
    rate = max(sustained["matches_per_s"] / 2, 0.5)
    report = bar(f"open loop, {rate:.1f} matches/s")
    ids, ingest = await open_loop(api, tracker, matches, rate, plan.open_s, report)
    await tracker.wait_all(120)
    finished = tracker.take(ids)
    out["open_loop"] = {
        "offered_matches_per_s": round(rate, 2),
        "ingest": ingest.summary(),
        "time_to_consistency": consistency(finished).summary(),
        "unfinished": len(ids) - len(finished),
        "post_retries": api.retried,
    }
    ttc = out["open_loop"]["time_to_consistency"]
    bar.note(f"ingest p99 {ingest.summary()['p99_ms']} ms, consistency p99 {ttc['p99_ms']} ms")
    report = bar("reads: warm, cold, leaderboards")
    warm_players = [pid for pid, _ in matches.played.most_common(200)]
    warm_lat, warm_rate = await read_loop(
        api, warm_players, plan.read_s, 16, lambda s: report(s / 3)
    )
    cold_lat, cold_rate = await read_each(api, cold_players, 16, lambda s: report(1 / 3 + s / 3))
    modes = sorted({mode for p in PLAYLISTS for mode in p.modes})
    board_lat, board_rate, largest = await board_loop(
        api, modes, plan.read_s, 16, lambda s: report(2 / 3 + s / 3)
    )
    out["reads"] = {
        "warm": {**warm_lat.summary(), "reads_per_s": round(warm_rate, 1)},
        "cold": {**cold_lat.summary(), "reads_per_s": round(cold_rate, 1)},
        "leaderboard": {
            **board_lat.summary(),
            "reads_per_s": round(board_rate, 1),
            "largest_board": largest,
        },
    }
    report = bar(f"scaling {'/'.join(map(str, plan.shards))} shards")
    points = []
    for i, shards in enumerate(plan.shards):
        await api.resize("player", shards)

        def step(share: float, i: int = i) -> None:
            report((i + share) / len(plan.shards))

        point = await _sustained(api, tracker, matches, plan.scale_s, plan, step, count)
        points.append({"shards": shards, **point})
        bar.note(f"{shards} shards: {point['player_updates_per_s']:,.1f} player updates/s")
    out["scaling"] = points


def _metrics_url(deployment: Deployment) -> str:
    """The worker's Prometheus endpoint."""
    return f"http://127.0.0.1:{deployment.env['STATSAGA_METRICS_PORT']}/metrics"


async def _fault_phase(
    deps: Dependencies,
    plan: Plan,
    workload: Workload,
    out: dict[str, Any],
    report: Callable[[float], None],
) -> dict[str, Any]:
    """A fresh deployment whose worker and actors fail ``fault_rate`` of their storage
    calls; posts at half the sustained rate; waits until every saga is done; checks each
    player's record against the matches posted."""
    prefix = "benchfaults"
    faults = f"storage={plan.fault_rate},seed=11"
    deployment = start_deployment(
        deps,
        prefix,
        {"STATSAGA_WORKER_CONCURRENCY": str(plan.worker_concurrency)},
        {"STATSAGA_FAULTS": faults},
    )
    metrics_url = _metrics_url(deployment)
    storage = await open_table_storage(deps.azurite.connection_string, prefix)
    api = Api(deployment.api_url)
    try:
        tracker = Tracker(storage.sagas)
        posted: list[dict[str, Any]] = []
        source = MatchGenerator(replace(workload, prefix="x"))

        def remember() -> Iterator[dict[str, Any]]:
            for body in source:
                posted.append(body)
                yield body

        rate = max(out["end_to_end"]["matches_per_s"] / 2, 0.5)
        ids, ingest = await open_loop(
            api, tracker, remember(), rate, plan.fault_s, lambda s: report(s / 2)
        )
        last_post = time.time()
        converged = await tracker.wait_all(300, lambda s: report(0.5 + s / 2.5))
        finished = tracker.take(ids)
        done_at = max((f.finished_at.timestamp() for f in finished), default=last_post)
        metrics = await scrape(metrics_url)
        checked, wrong = await _check_records(api, posted)
        stalled = [await _saga_story(storage, i) for i in ids if i not in tracker.done]
        report(1.0)
        return {
            "faults": faults,
            "offered_matches_per_s": round(rate, 2),
            "matches": len(ids),
            "converged": converged,
            "unfinished": len(ids) - len(finished),
            "convergence_after_last_post_s": round(max(done_at - last_post, 0.0), 2),
            "time_to_consistency": consistency(finished).summary(),
            "player_retries": int(total(metrics, "statsaga_player_retries_total")),
            "dead_letters": int(total(metrics, "statsaga_dead_letters_total")),
            "messages_handled": {
                k.split("{", 1)[1].rstrip("}"): int(v)
                for k, v in metrics.items()
                if k.startswith("statsaga_messages_handled_total{")
            },
            "records_checked": checked,
            "records_wrong": wrong,
            "ingest": ingest.summary(),
            # What the log says of each saga that did not finish in time, to find why.
            "unfinished_sagas": stalled,
        }
    finally:
        await api.close()
        await storage.close()
        deployment.stop()


async def _saga_story(storage: TableStorage, match_id: str) -> dict[str, Any]:
    """A saga's state, its players' progress and its logged events, as JSON."""
    record = await storage.sagas.load(match_id)
    return {
        "match_id": match_id,
        "state": record.saga.state.value,
        "players": {
            p: {**dataclasses.asdict(g), "status": g.status.value}
            for p, g in record.saga.players.items()
        },
        "log": [
            {"seq": e.seq, "at": e.at.isoformat(), **event_to_dict(e.event)}
            for e in await storage.sagas.log(match_id)
        ],
    }


async def _check_records(api: Api, posted: list[dict[str, Any]]) -> tuple[int, int]:
    """Players checked, and those whose matches, kills or deaths differ from the sums of
    what was posted (lost or double-counted updates)."""
    expected: dict[str, Counter[str]] = {}
    for body in posted:
        for line in body["players"]:
            c = expected.setdefault(line["player_id"], Counter())
            c.update({"matches": 1, "kills": line["kills"], "deaths": line["deaths"]})
    wrong = 0
    semaphore = asyncio.Semaphore(16)

    async def check(pid: str, want: Counter[str]) -> None:
        nonlocal wrong
        async with semaphore:
            record = await api.stats(pid)
        if any(record.get(k) != v for k, v in want.items()):
            wrong += 1

    await asyncio.gather(*(check(p, c) for p, c in expected.items()))
    return len(expected), wrong


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line of ``statsaga bench``."""
    parser = argparse.ArgumentParser(prog="statsaga bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short phases (under 3 minutes)")
    parser.add_argument("--plan", choices=sorted(PLANS), help="phase lengths (default: full)")
    parser.add_argument("--name", help="results file name (default: e2e-quick or e2e-full)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    parser.add_argument("--population", type=int, default=None, help="players (Zipf)")
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent of popularity")
    parser.add_argument("--events", action="store_true", help="post raw kill events too")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the api, worker and actors with py-spy during the sustained phase",
    )
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; write and print its results."""
    from bench.summary import write_all

    args = parse_args(argv)
    plan = PLANS[args.plan] if args.plan else QUICK if args.quick else FULL
    population = args.population or (20_000 if plan is FULL else 2_000)
    workload = Workload(population, args.zipf, args.events, "b", args.seed)
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="statsaga-bench-"))
    print(f"statsaga bench ({plan.name}): data and logs in {root}", file=sys.stderr)
    # Ctrl-C (or SIGTERM) raises where the run is, sync or async, and everything started
    # is stopped on the way out: asyncio's own handler only cancels the main task, which
    # a cancellation absorbed inside a client library would leave running.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    with dependencies(root) as deps:
        profile = args.out / f"profile-{plan.name}" if args.profile else None
        try:
            outcome = asyncio.run(main_phases(deps, plan, workload, profile))
        except KeyboardInterrupt as stop:
            print(f"\nstatsaga bench: {stop}, stopping (logs kept in {root})", file=sys.stderr)
            return 130
        finally:
            stop_all()
    # Kept when anything failed (the logs tell why); of no use once the numbers are out.
    shutil.rmtree(root, ignore_errors=True)
    outcome["wall_s"] = round(time.monotonic() - began, 1)
    write_all(outcome, args.out, args.name or f"e2e-{plan.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
