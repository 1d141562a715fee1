"""Prometheus metrics: one ``Metrics`` per process, built by ``app.bootstrap`` with the
families of the roles the process runs, on a registry of its own (not prometheus-client's
global one: several apps in one test process must not collide).

- api role: HTTP requests and ingest latency (fed by ``app.entrypoints.api.metrics``), and
  views read at scrape time (``app.observability.metrics_views``): open sagas by state,
  grains per shard, queue depths. Those are the deployment's, so every api process
  reports the same values.
- worker role: what its worker did with each message (``Worker.observer``): messages by
  outcome, dead letters, scheduled player retries, sagas finished and how long they took.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.exposition import choose_encoder

from app.application.messages import MATCHES_QUEUE, PLAYER_UPDATES_QUEUE
from app.application.worker import Handled
from app.domain.saga import SagaState
from app.observability.metrics_views import ScrapeViews

QUEUES = (MATCHES_QUEUE, PLAYER_UPDATES_QUEUE)
FINISHED = (SagaState.COMPLETED.value, SagaState.COMPENSATED.value)
OUTCOMES = ("completed", "abandoned", "dead_lettered", "unsettled")
# Reasons the worker itself gives; a permanent domain error adds its type's name.
DEAD_LETTER_REASONS = ("PlayerStepFailed", "UnprocessableMessage")
INGEST_OUTCOMES = ("accepted", "repeated", "rejected", "failed")
# A saga takes well under a second when nothing fails; retries back off up to a minute
# each, and a stuck saga waits for an operator: the buckets reach an hour.
SAGA_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ApiMetrics:
    """The api role's request metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "statsaga_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "statsaga_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.ingest = Histogram(
            "statsaga_ingest_duration_seconds",
            "Time to answer POST /v1/matches: accepted (202), repeated (200), "
            "rejected (4xx), failed (5xx).",
            ["outcome"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        for outcome in INGEST_OUTCOMES:
            self.ingest.labels(outcome)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)

    def ingested(self, status: int, seconds: float) -> None:
        """Observe one answered POST /v1/matches."""
        self.ingest.labels(ingest_outcome(status)).observe(seconds)


def ingest_outcome(status: int) -> str:
    """What an ingest status code means to a game server."""
    if status == 202:
        return "accepted"
    if 200 <= status < 300:
        return "repeated"  # the same match again: 200, nothing new stored
    return "rejected" if status < 500 else "failed"


class WorkerMetrics:
    """The worker role's metrics: a ``HandledObserver`` of its worker."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "statsaga_messages_handled",
            "Saga messages the worker handled, by queue and how they were settled.",
            ["queue", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "statsaga_dead_letters",
            "Messages the worker moved to a dead-letter queue, by queue and reason.",
            ["queue", "reason"],
            registry=registry,
        )
        self.retries = Counter(
            "statsaga_player_retries",
            "Durable retries of a player's step the worker scheduled (forward recovery).",
            registry=registry,
        )
        self.finished = Counter(
            "statsaga_sagas_finished",
            "Sagas the worker saw finish, by final state.",
            ["state"],
            registry=registry,
        )
        self.saga_duration = Histogram(
            "statsaga_saga_duration_seconds",
            "From the saga's start (or its compensation's) to its finish.",
            ["state"],
            buckets=SAGA_BUCKETS,
            registry=registry,
        )
        self.consistency = Histogram(
            "statsaga_time_to_consistency_seconds",
            "From a match's acceptance to its saga's first finish.",
            ["state"],
            buckets=SAGA_BUCKETS,
            registry=registry,
        )
        # Known label values start at zero, so that rates and alerts have a series.
        for queue in QUEUES:
            for outcome in OUTCOMES:
                self.messages.labels(queue, outcome)
            for reason in DEAD_LETTER_REASONS:
                self.dead_letters.labels(queue, reason)
        for state in FINISHED:
            self.finished.labels(state)
            self.saga_duration.labels(state)
            self.consistency.labels(state)

    def handled(self, handled: Handled) -> None:
        """Observe one message the worker handled."""
        self.messages.labels(handled.queue, handled.outcome).inc()
        if handled.outcome == "dead_lettered":
            self.dead_letters.labels(handled.queue, handled.reason or "unknown").inc()
        reply = handled.reply
        if reply is None:
            return
        scheduled = [m for m in reply.outbox if m.delay_s is not None]
        self.retries.inc(sum(1 for m in scheduled if m.queue == PLAYER_UPDATES_QUEUE))
        done = reply.finished
        if done is not None:
            self.finished.labels(done.state).inc()
            if done.saga_s is not None:
                self.saga_duration.labels(done.state).observe(done.saga_s)
            if done.consistency_s is not None:
                self.consistency.labels(done.state).observe(done.consistency_s)


class Metrics:
    """The metrics of one process: ``api`` and ``worker`` for the roles it runs, and the
    scrape-time ``views`` (the api's)."""

    def __init__(self, api: bool = True, worker: bool = True) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_*: CPU, memory, open files
        self.api = ApiMetrics(self.registry) if api else None
        self.worker = WorkerMetrics(self.registry) if worker else None
        self.views = ScrapeViews(self.registry)

    async def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The registry in the format ``accept`` asks for (Prometheus text by default),
        after refreshing the views; and its content type."""
        await self.views.refresh()
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> Callable[[], None]:
    """Serve ``registry`` on http://``host``:``port``/metrics from a thread (for a process
    without the API); returns what stops it. ``OSError`` when the port is taken."""
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5.0)

    return stop
