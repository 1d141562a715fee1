"""``/metrics`` of the running service: after a run the counters moved by what the run
did; a worker run without the API serves its own on its metrics port."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.application.messages import MATCHES_QUEUE
from app.application.ports import BusMessage, dead_letter_queue
from app.observability.metrics_views import POOLS_TTL_S
from devstack.processes import Azurite, free_port
from devstack.ray_cluster import RayHead
from storage.servicebus_bus import ServiceBusMessageBus
from tests.conftest import BrokerFactory
from tests.e2e.conftest import WORKER_UP, Service, service_env
from tests.support.client import StatsClient
from tests.support.matches import random_match
from tests.support.raypools import kill_pools_on
from tests.support.servicebus import project_queues

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.timeout(300)]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample; 0 when absent (a labelled series not yet seen)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    """The sum of a family's samples over every label value."""
    return sum(v for (n, _), v in samples.items() if n == name)


def families(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def scrape_until(url: str, done: Callable[[Samples], bool], timeout_s: float = 60) -> Samples:
    """Scrape ``url`` until ``done`` holds (the worker counts a message once it has
    settled it, a moment after the saga state a client sees)."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = parse(httpx.get(url, timeout=30).text)
        if done(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.5)


def publish(connection_string: str, message: BusMessage) -> None:
    async def send() -> None:
        bus = ServiceBusMessageBus(connection_string)
        try:
            await bus.publish(MATCHES_QUEUE, message)
        finally:
            await bus.close()

    asyncio.run(send())


def take_dead_letter(connection_string: str, message_id: str) -> dict[str, Any] | None:
    """Remove the dead letter ``message_id`` from ``matches`` (the session's service is
    shared: an operator's replay in a later test must not meet it); its body, if found."""

    async def take() -> dict[str, Any] | None:
        bus = ServiceBusMessageBus(connection_string)
        found = None
        try:
            for received in await bus.receive(dead_letter_queue(MATCHES_QUEUE), 32, 2.0):
                if received.message.message_id == message_id:
                    found = dict(received.message.body)
                    await bus.complete(received)
                else:
                    await bus.abandon(received)
        finally:
            await bus.close()
        return found

    return asyncio.run(take())


def bogus(run: str) -> BusMessage:
    """A saga message about a match nobody stored: the worker dead-letters it."""
    return BusMessage(f"bogus-{run}", {"match_id": f"never-stored-{run}"})


def test_the_counters_move_by_what_a_run_did(service: Service, client: StatsClient) -> None:
    url = f"{service.base_url}/metrics"
    httpx.get(url, timeout=30)
    time.sleep(POOLS_TTL_S + 0.5)  # the grain numbers of the next scrape are read now
    before = parse(httpx.get(url, timeout=30).text)

    run = uuid.uuid4().hex[:8]
    rng = random.Random(7)
    population = [f"p-{run}-{i}" for i in range(10)]
    matches = [random_match(rng, f"m-{run}-{i}", population, size=4) for i in range(3)]
    players = {line["player_id"] for m in matches for line in m["players"]}
    for match in matches:
        assert client.post_match(match).status_code == 202
    assert client.post_match(matches[0]).status_code == 200  # the same match again
    assert client.post_match({"match_id": f"m-{run}-x"}).status_code == 422
    bus = service.env["STATSAGA_SERVICEBUS_CONNECTION_STRING"]
    publish(bus, bogus(run))
    ids = [m["match_id"] for m in matches]
    assert client.wait_finished(ids) == dict.fromkeys(ids, "completed")

    dead = {"queue": MATCHES_QUEUE, "reason": "UnprocessableMessage"}

    def grains(samples: Samples) -> float:
        return total(samples, "statsaga_grain_activations_total")

    def counted(samples: Samples) -> bool:
        finished = "statsaga_sagas_finished_total"
        return (
            value(samples, finished, state="completed") - value(before, finished, state="completed")
            >= 3
            and value(samples, "statsaga_dead_letters_total", **dead)
            > value(before, "statsaga_dead_letters_total", **dead)
            and grains(samples) - grains(before) >= len(players)
        )

    after = scrape_until(url, counted)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ingest = {"method": "POST", "route": "/v1/matches"}
    assert moved("statsaga_http_requests_total", **ingest, status="202") == 3
    assert moved("statsaga_http_requests_total", **ingest, status="200") == 1
    assert moved("statsaga_http_requests_total", **ingest, status="422") == 1
    assert moved("statsaga_http_request_duration_seconds_count", **ingest) == 5
    assert moved("statsaga_ingest_duration_seconds_count", outcome="accepted") == 3
    assert moved("statsaga_ingest_duration_seconds_count", outcome="repeated") == 1
    assert moved("statsaga_ingest_duration_seconds_count", outcome="rejected") == 1
    reads = {"method": "GET", "route": "/v1/matches/{match_id}", "status": "200"}
    assert moved("statsaga_http_requests_total", **reads) >= len(ids)
    assert not any(run in dict(labels).get("route", "") for _, labels in after)

    assert moved("statsaga_sagas_finished_total", state="completed") == 3
    assert moved("statsaga_saga_duration_seconds_count", state="completed") == 3
    assert moved("statsaga_time_to_consistency_seconds_count", state="completed") == 3
    handled = {"queue": MATCHES_QUEUE}
    assert moved("statsaga_messages_handled_total", **handled, outcome="completed") == 3
    assert moved("statsaga_messages_handled_total", **handled, outcome="dead_lettered") == 1
    assert moved("statsaga_dead_letters_total", **dead) == 1
    dead_letter = take_dead_letter(bus, bogus(run).message_id)  # the broker agrees
    assert dead_letter is not None and dead_letter["DeadLetterReason"] == "UnprocessableMessage"
    # Each new player's grain was activated once, on its shard.
    assert grains(after) - grains(before) == len(players)
    assert {"statsaga_player_retries_total", "statsaga_sagas_open"} <= families(after)
    assert value(after, "statsaga_pool_size", pool="player") >= 1
    # Queue depths come from the broker's administration API, for both saga queues.
    depths = {dict(labels)["queue"] for n, labels in after if n == "statsaga_queue_messages"}
    assert depths == {"matches", "player-updates"}
    assert total(after, "statsaga_scrape_errors_total") == total(
        before, "statsaga_scrape_errors_total"
    )


def test_a_worker_alone_serves_its_metrics_on_its_port(
    azurite: Azurite,
    broker_factory: BrokerFactory,
    ray_head: RayHead,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data = tmp_path_factory.mktemp("metrics-worker")
    broker = broker_factory(project_queues(lock_s=10), name="metrics-broker")
    port = free_port()
    env: dict[str, Any] = {
        **service_env(azurite, broker, data),
        **ray_head.env,
        "STATSAGA_METRICS_PORT": str(port),
        "STATSAGA_RAY_NAMESPACE": f"metrics-{uuid.uuid4().hex[:6]}",
    }
    worker = Service("worker", env, data / "worker.log").start()
    try:
        worker.wait_log(WORKER_UP, 120)
        assert f"metrics on http://127.0.0.1:{port}/metrics" in worker.output()
        run = uuid.uuid4().hex[:8]
        publish(broker.connection_string, bogus(run))
        dead = {"queue": MATCHES_QUEUE, "reason": "UnprocessableMessage"}
        found = scrape_until(
            f"http://127.0.0.1:{port}/metrics",
            lambda s: value(s, "statsaga_dead_letters_total", **dead) >= 1,
        )
        assert value(found, "statsaga_dead_letters_total", **dead) == 1
        assert (
            value(
                found,
                "statsaga_messages_handled_total",
                queue=MATCHES_QUEUE,
                outcome="dead_lettered",
            )
            == 1
        )
        # The worker's own families only: requests and the deployment's views are the api's.
        assert "statsaga_http_requests_total" not in families(found)
        assert "statsaga_sagas_open" not in families(found)
    finally:
        worker.stop()
        kill_pools_on(ray_head, [env["STATSAGA_RAY_NAMESPACE"]])
