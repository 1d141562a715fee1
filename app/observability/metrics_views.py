"""Metrics read at scrape time from the deployment's state: open sagas by state (the
open-saga index), grains per shard (the pool directory), queue depths (Service Bus's
administration API).

Each source is read within a timeout and its families are cached for a few seconds. A
source that fails or is too slow leaves its families out of that scrape (the rest is
served), counts ``statsaga_scrape_errors_total{source}``, and logs one WARNING per streak
of failures: a scrape never fails or hangs because a source does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.application.messages import MATCHES_QUEUE, PLAYER_UPDATES_QUEUE
from app.application.ports import PoolAdmin, QueueDepth, QueueStats, SagaLog, SagaRecord
from app.application.sagas import utc_now
from app.domain.saga import OPEN_STATES, SagaState

log = logging.getLogger(__name__)
T = TypeVar("T")

# Counting open sagas reads each one's summary: bounded, so that a backlog of thousands
# costs a scrape no more than this many reads (the gauge then stops at the bound).
OPEN_SAGAS_LIMIT = 500
SAGAS_TIMEOUT_S, SAGAS_TTL_S = 5.0, 10.0
# The directory gives a member that does not answer 5 s before it reports it as down.
POOLS_TIMEOUT_S, POOLS_TTL_S = 6.0, 5.0
QUEUES_TIMEOUT_S, QUEUES_TTL_S = 3.0, 5.0
QUEUE_KINDS = ("active", "scheduled", "dead_letter")


@dataclass
class ScrapeSource(Generic[T]):
    """One source read at scrape time: ``fetch`` within ``timeout_s``, turned into metric
    families by ``families``; the families are served for ``ttl_s``."""

    name: str
    fetch: Callable[[], Awaitable[T]]
    families: Callable[[T], list[Metric]]
    timeout_s: float
    ttl_s: float
    clock: Callable[[], float] = time.monotonic
    current: list[Metric] | None = None
    failing: bool = False
    _fetched_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def refresh(self, errors: Counter) -> None:
        """Read the source unless its families are fresh; on failure drop them."""
        async with self._lock:  # concurrent scrapes read the source once
            if self.current is not None and self.clock() - self._fetched_at < self.ttl_s:
                return
            try:
                families = self.families(await asyncio.wait_for(self.fetch(), self.timeout_s))
            except Exception as exc:  # TimeoutError included: the scrape goes on without it
                self.current = None
                errors.labels(self.name).inc()
                if not self.failing:
                    log.warning(
                        "metrics: reading %s failed (%s: %s); its metrics are left out until "
                        "it answers",
                        self.name,
                        type(exc).__name__,
                        str(exc) or f"no answer within {self.timeout_s}s",
                    )
                self.failing = True
                return
            self.current, self._fetched_at = families, self.clock()
            if self.failing:
                log.info("metrics: %s answers again", self.name)
            self.failing = False


class ScrapeViews(Collector):
    """The scrape-time sources of one registry, and the collector that serves them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.errors = Counter(
            "statsaga_scrape_errors",
            "Scrapes that left a source's metrics out (it failed or was too slow).",
            ["source"],
            registry=registry,
        )
        self.sources: list[ScrapeSource[Any]] = []
        registry.register(self)

    def add(self, source: ScrapeSource[Any]) -> None:
        """Serve ``source`` from now on."""
        self.sources.append(source)
        self.errors.labels(source.name)

    def watch(
        self,
        sagas: SagaLog | None = None,
        pools: PoolAdmin | None = None,
        queues: QueueStats | None = None,
    ) -> None:
        """Serve the views of the given ports (the api role's)."""
        if sagas is not None:
            read = sagas.open_sagas
            self.add(
                ScrapeSource(
                    "sagas",
                    lambda: read(utc_now(), OPEN_SAGAS_LIMIT),
                    saga_families,
                    SAGAS_TIMEOUT_S,
                    SAGAS_TTL_S,
                )
            )
        if pools is not None:
            self.add(
                ScrapeSource("pools", pools.describe, pool_families, POOLS_TIMEOUT_S, POOLS_TTL_S)
            )
        if queues is not None:
            depths = queues.depths
            self.add(
                ScrapeSource(
                    "queues",
                    lambda: depths([MATCHES_QUEUE, PLAYER_UPDATES_QUEUE]),
                    queue_families,
                    QUEUES_TIMEOUT_S,
                    QUEUES_TTL_S,
                )
            )

    async def refresh(self) -> None:
        """Refresh every source, concurrently (a scrape takes as long as the slowest)."""
        await asyncio.gather(*(s.refresh(self.errors) for s in self.sources))

    def collect(self) -> Iterator[Metric]:
        """The families of the sources that answered."""
        for source in self.sources:
            yield from source.current or ()


def saga_families(records: Sequence[SagaRecord]) -> list[Metric]:
    """``statsaga_sagas_open{state}``, every open state present."""
    tally = Tally(r.saga.state for r in records)
    gauge = GaugeMetricFamily(
        "statsaga_sagas_open",
        f"Unfinished sagas by state, from the open-saga index (counted up to {OPEN_SAGAS_LIMIT}).",
        labels=["state"],
    )
    for state in SagaState:
        if state in OPEN_STATES:
            gauge.add_metric([state.value], tally.get(state, 0))
    return [gauge]


def pool_families(described: Mapping[str, Any]) -> list[Metric]:
    """Pool sizes, members up, and each shard's grains, from ``PoolAdmin.describe()``."""
    size = GaugeMetricFamily("statsaga_pool_size", "Members of each actor pool.", labels=["pool"])
    up = GaugeMetricFamily(
        "statsaga_pool_member_up",
        "1 when the pool member answered the pool directory, else 0.",
        labels=["pool", "member"],
    )
    active = GaugeMetricFamily(
        "statsaga_grains_active", "Player grains active on each shard.", labels=["shard"]
    )
    activations = CounterMetricFamily(
        "statsaga_grain_activations",
        "Player grains activated on each shard since its process started.",
        labels=["shard"],
    )
    deactivations = CounterMetricFamily(
        "statsaga_grain_deactivations",
        "Player grains deactivated on each shard since its process started.",
        labels=["shard"],
    )
    for pool, view in described["pools"].items():
        size.add_metric([pool], view["size"])
        for member in view["members"]:
            index = str(member["index"])
            up.add_metric([pool, index], 0 if "error" in member else 1)
            if pool == "player" and "error" not in member:
                active.add_metric([index], member["active"])
                activations.add_metric([index], member["activations"])
                deactivations.add_metric([index], member["deactivations"])
    return [size, up, active, activations, deactivations]


def queue_families(depths: Mapping[str, QueueDepth]) -> list[Metric]:
    """``statsaga_queue_messages{queue,kind}`` from ``QueueStats.depths()``."""
    gauge = GaugeMetricFamily(
        "statsaga_queue_messages",
        "Messages in each queue: active (ready), scheduled (later), dead_letter.",
        labels=["queue", "kind"],
    )
    for queue, depth in depths.items():
        for kind, count in zip(QUEUE_KINDS, _counts(depth), strict=True):
            gauge.add_metric([queue, kind], count)
    return [gauge]


def _counts(depth: QueueDepth) -> Iterable[int]:
    return (depth.active, depth.scheduled, depth.dead_letter)
