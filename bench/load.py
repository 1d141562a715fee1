"""Load over HTTP, as game clients and stats sites make it, and the saga log read back to
see when each match became consistent.

- ``saturate``: a closed loop that keeps a window of matches in flight (posted, not yet
  consistent, counted by the worker's finished-saga counter): the sustained end-to-end
  rate;
- ``open_loop``: posts at a fixed offered rate whatever the answers take (latency counted
  from when a post was due, so a slow answer cannot hide the posts queued behind it);
- ``read_loop`` and ``read_each``: service records, warm and cold.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.application.ports import SagaLog
from app.domain.errors import NotFound
from app.domain.saga import OPEN_STATES
from bench.measure import Latencies
from bench.stack import KEYS

Report = Callable[[float], None]


class Api:
    """The statsaga HTTP API with the benchmark's keys.

    On aiohttp rather than httpx (the project's client elsewhere): the load generator
    shares the two cores with the service it measures, and httpx cost four to five times
    aiohttp's CPU per POST (docs/performance.md), time the service could not use."""

    def __init__(self, base_url: str, connections: int = 64) -> None:
        self._base = base_url.rstrip("/")
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=60.0),
        )
        self.retried = 0  # posts answered 503 (or not at all) and sent again

    async def post_match(self, body: dict[str, Any]) -> None:
        """Post until accepted, as a game client would: a 503 or a lost answer is sent
        again (the match id makes that safe); anything else unexpected raises."""
        data = json.dumps(body).encode()
        headers = {**_auth("ingest"), "Content-Type": "application/json"}
        for attempt in range(20):
            status, text = 0, ""
            try:
                async with self.http.post(
                    f"{self._base}/v1/matches", data=data, headers=headers
                ) as response:
                    status, text = response.status, await response.text()
            except (aiohttp.ClientError, TimeoutError):
                status = 0  # no answer: sent again
            if status in (200, 201, 202):
                return
            if status not in (0, 503):
                raise RuntimeError(f"POST {body['match_id']}: {status} {text}")
            self.retried += 1
            await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
        raise RuntimeError(f"POST {body['match_id']}: not accepted after 20 tries")

    async def stats(self, player_id: str) -> dict[str, Any]:
        """A player's service record."""
        url = f"{self._base}/v1/players/{player_id}/stats"
        async with self.http.get(url, headers=_auth("read")) as response:
            response.raise_for_status()
            body: dict[str, Any] = await response.json()
        return body

    async def leaderboard(
        self, mode: str, stat: str, limit: int, continuation: str | None = None
    ) -> dict[str, Any]:
        """One page of a leaderboard."""
        params = {"stat": stat, "limit": str(limit)}
        if continuation:
            params["continuation"] = continuation
        url = f"{self._base}/v1/leaderboards/{mode}"
        async with self.http.get(url, params=params, headers=_auth("read")) as response:
            response.raise_for_status()
            body: dict[str, Any] = await response.json()
        return body

    async def resize(self, pool: str, size: int) -> None:
        """Resize a pool; returns once the resize is done."""
        url = f"{self._base}/v1/admin/pools/{pool}"
        async with self.http.put(url, json={"size": size}, headers=_auth("admin")) as response:
            response.raise_for_status()

    async def close(self) -> None:
        """Close the connections."""
        await self.http.close()


BOARD_STATS = ("rating", "kills", "wins", "kd")


def _auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


async def scrape(url: str) -> dict[str, float]:
    """Counters and gauges of a Prometheus endpoint, as ``name{labels}`` -> value."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(url)).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}"] = sample.value
    return values


def total(metrics: dict[str, float], name: str) -> float:
    """The sum of a metric over all its labels."""
    return sum(v for k, v in metrics.items() if k.split("{", 1)[0] == name)


_FINISHED_ONLY = {"name[]": "statsaga_sagas_finished_total"}
_PLAIN = {"Accept-Encoding": "identity"}


class FinishedCount:
    """How many sagas the worker has seen finish, from its ``/metrics``: one small request
    tells how many matches are still in flight, where reading the saga log match by match
    (in the order posted, stopping at the first one not done, a quarter second apart) kept
    the window short of full and the cores idle (issue 21's measurements)."""

    def __init__(self, metrics_url: str) -> None:
        self._url = metrics_url
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def __call__(self) -> float:
        """The worker's finished-saga counter, every final state together."""
        # Only this counter, unzipped: the whole registry, gzipped 20 times a second, cost
        # the worker about a third of its CPU in the profiles (issue 21).
        async with self._http.get(self._url, params=_FINISHED_ONLY, headers=_PLAIN) as response:
            text = await response.text()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("statsaga_sagas_finished_total")
        )

    async def close(self) -> None:
        """Close the connection."""
        await self._http.close()


@dataclass
class Finished:
    """A match as the saga log has it once consistent."""

    match_id: str
    players: int
    posted_at: float  # epoch seconds, by the benchmark's clock
    accepted_at: datetime
    finished_at: datetime
    state: str

    @property
    def consistency_s(self) -> float:
        """Accepted -> every player updated, by the service's own clock."""
        return (self.finished_at - self.accepted_at).total_seconds()


@dataclass
class Tracker:
    """Matches posted and not yet seen consistent in the saga log, and the finished ones."""

    sagas: SagaLog
    pending: dict[str, tuple[int, float]] = field(default_factory=dict)
    done: dict[str, Finished] = field(default_factory=dict)

    def posted(self, body: dict[str, Any], at: float) -> None:
        """Track a match that was just posted."""
        self.pending[body["match_id"]] = (len(body["players"]), at)

    async def poll(self, reads: int, at_once: int = 32) -> None:
        """Read up to ``reads`` of the oldest pending matches, ``at_once`` together,
        stopping after a round that found one not done (sagas finish roughly in the order
        they were posted: the rest are likely not done either)."""
        oldest = list(self.pending)[:reads]
        for start in range(0, len(oldest), at_once):
            found = await asyncio.gather(*map(self._check, oldest[start : start + at_once]))
            if not all(found):
                return

    async def _check(self, match_id: str) -> bool:
        try:
            record = await self.sagas.load(match_id)
        except NotFound:
            return False
        summary = record.summary
        if record.saga.state in OPEN_STATES or summary.finished_at is None:
            return False
        players, at = self.pending.pop(match_id)
        self.done[match_id] = Finished(
            match_id,
            players,
            at,
            summary.accepted_at,
            summary.finished_at,
            record.saga.state.value,
        )
        return True

    async def wait_all(self, timeout_s: float, report: Report = lambda share: None) -> bool:
        """Until every tracked match is consistent (True) or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        start = len(self.pending)
        while self.pending and time.monotonic() < deadline:
            await self.poll(len(self.pending))
            report(1 - len(self.pending) / max(start, 1))
            if self.pending:
                await asyncio.sleep(0.2)
        return not self.pending

    def take(self, ids: Sequence[str]) -> list[Finished]:
        """The finished records of ``ids``."""
        return [self.done[i] for i in ids if i in self.done]


def updates_per_s(finished: Sequence[Finished]) -> float:
    """Player updates per second, from the first post to the last match consistent."""
    if not finished:
        return 0.0
    began = min(f.posted_at for f in finished)
    ended = max(f.finished_at.timestamp() for f in finished)
    return sum(f.players for f in finished) / max(ended - began, 1e-6)


async def saturate(
    api: Api,
    tracker: Tracker,
    matches: Iterator[dict[str, Any]],
    seconds: float,
    window: int,
    report: Report,
    finished: Callable[[], Awaitable[float]],
) -> list[str]:
    """Keep ``window`` matches in flight for ``seconds``; returns the ids posted. In flight
    is posted minus ``finished()`` since the start (the saga log is read once afterwards,
    by ``Tracker.wait_all``)."""
    ids: list[str] = []
    start = time.perf_counter()
    base = await finished()
    sending: set[asyncio.Task[None]] = set()
    while time.perf_counter() - start < seconds:
        in_flight = len(ids) - (await finished() - base)
        for _ in range(window - int(in_flight)):
            body = next(matches)
            ids.append(body["match_id"])
            tracker.posted(body, time.time())
            task = asyncio.create_task(api.post_match(body))
            sending.add(task)
            task.add_done_callback(sending.discard)
        report(min((time.perf_counter() - start) / seconds, 1.0))
        await asyncio.sleep(0.05)
    await asyncio.gather(*sending)
    return ids


async def open_loop(
    api: Api,
    tracker: Tracker,
    matches: Iterator[dict[str, Any]],
    rate: float,
    seconds: float,
    report: Report,
) -> tuple[list[str], Latencies]:
    """Post ``rate`` matches a second for ``seconds``, each when it is due."""
    latencies = Latencies()
    ids: list[str] = []
    tasks: list[asyncio.Task[None]] = []

    async def send(body: dict[str, Any], due: float) -> None:
        await api.post_match(body)
        latencies.add(time.perf_counter() - due)

    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        due = start + i / rate
        await asyncio.sleep(max(due - time.perf_counter(), 0))
        body = next(matches)
        ids.append(body["match_id"])
        tracker.posted(body, time.time())
        tasks.append(asyncio.create_task(send(body, due)))
        if i % max(int(rate / 2), 1) == 0:
            report(i / n)
    await asyncio.gather(*tasks)
    report(1.0)
    return ids, latencies


async def read_loop(
    api: Api, players: Sequence[str], seconds: float, concurrency: int, report: Report
) -> tuple[Latencies, float]:
    """Read random records of ``players`` for ``seconds``; latencies and reads/s."""
    latencies = Latencies()
    rng = random.Random(7)
    start = time.perf_counter()

    async def reader() -> None:
        while (now := time.perf_counter()) - start < seconds:
            await api.stats(rng.choice(players))
            latencies.add(time.perf_counter() - now)
            report(min((time.perf_counter() - start) / seconds, 1.0))

    await asyncio.gather(*(reader() for _ in range(concurrency)))
    return latencies, len(latencies.samples) / (time.perf_counter() - start)


async def read_each(
    api: Api, players: Sequence[str], concurrency: int, report: Report
) -> tuple[Latencies, float]:
    """Read each of ``players`` once (cold: their grains are not active yet)."""
    latencies = Latencies()
    queue = list(players)
    start = time.perf_counter()

    async def reader() -> None:
        while queue:
            pid = queue.pop()
            began = time.perf_counter()
            await api.stats(pid)
            latencies.add(time.perf_counter() - began)
            report(len(latencies.samples) / len(players))

    await asyncio.gather(*(reader() for _ in range(concurrency)))
    return latencies, len(players) / (time.perf_counter() - start)


async def board_loop(
    api: Api, modes: Sequence[str], seconds: float, concurrency: int, report: Report
) -> tuple[Latencies, float, int]:
    """Read leaderboard pages for ``seconds``, as stats sites do: a random mode and stat,
    its top 25, then one page deeper three times in ten; latencies, pages/s, and the
    largest board seen."""
    latencies = Latencies()
    rng = random.Random(11)
    start = time.perf_counter()
    largest = 0

    async def reader() -> None:
        nonlocal largest
        while (now := time.perf_counter()) - start < seconds:
            mode, stat = rng.choice(modes), rng.choice(BOARD_STATS)
            page = await api.leaderboard(mode, stat, 25)
            latencies.add(time.perf_counter() - now)
            largest = max(largest, page["size"])
            if page["continuation"] and rng.random() < 0.3:
                began = time.perf_counter()
                await api.leaderboard(mode, stat, 25, page["continuation"])
                latencies.add(time.perf_counter() - began)
            report(min((time.perf_counter() - start) / seconds, 1.0))

    await asyncio.gather(*(reader() for _ in range(concurrency)))
    return latencies, len(latencies.samples) / (time.perf_counter() - start), largest
