"""``/metrics`` on the API app over in-memory adapters: requests counted by route template
(never by raw path), ingest latency by outcome, the exposition formats."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors.grains import GrainSettings, PlayerGrainHost
from app.application.operations import Operations
from app.application.services import StatsService
from app.entrypoints.api import create_app
from app.observability.metrics import Metrics
from app.settings import Settings
from storage.memory import InMemoryPayloadArchive, InMemoryPlayerStore, InMemorySagaLog
from storage.memory_bus import InMemoryMessageBus
from tests.support.matches import random_match

KEYS = {"ingest-key-0123456789": "ingest", "read-key-0123456789": "read"}
INGEST = {"Authorization": "Bearer ingest-key-0123456789"}
READ = {"Authorization": "Bearer read-key-0123456789"}


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, Metrics]]:
    store, sagas = InMemoryPlayerStore(), InMemorySagaLog()
    archive, bus = InMemoryPayloadArchive(), InMemoryMessageBus()
    grains = PlayerGrainHost(store, GrainSettings())
    settings = Settings(api_keys=",".join(f"{k}:{r}" for k, r in KEYS.items()), max_body_bytes=4096)
    metrics = Metrics(worker=False)
    metrics.views.watch(sagas=sagas)
    app = create_app(
        settings,
        StatsService(sagas, archive, store, grains, bus),
        Operations(sagas, bus),
        metrics=metrics,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://statsaga") as client:
        yield client, metrics


def requests(text: str) -> dict[tuple[str, str, str], float]:
    """``statsaga_http_requests_total`` by (method, route, status)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "statsaga_http_requests_total":
                found[(s.labels["method"], s.labels["route"], s.labels["status"])] = s.value
    return found


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


async def test_requests_are_counted_by_route_template_method_and_status(
    api: tuple[httpx.AsyncClient, Metrics],
) -> None:
    client, _ = api
    run = uuid.uuid4().hex[:6]
    match = random_match(random.Random(1), f"m-{run}", [f"p-{run}-a", f"p-{run}-b"], size=2)
    assert (await client.post("/v1/matches", json=match, headers=INGEST)).status_code == 202
    assert (await client.post("/v1/matches", json=match, headers=INGEST)).status_code == 200
    assert (await client.post("/v1/matches", json={}, headers=INGEST)).status_code == 422
    too_big = {**match, "padding": "x" * 5000}
    assert (await client.post("/v1/matches", json=too_big, headers=INGEST)).status_code == 413
    response = await client.get(f"/v1/matches/{match['match_id']}", headers=READ)
    assert response.status_code == 200
    for player in (f"p-{run}-x", f"p-{run}-y"):
        assert (await client.get(f"/v1/players/{player}/matches", headers=READ)).status_code == 404
    assert (await client.get(f"/no/such/{run}")).status_code == 404
    assert (await client.delete("/v1/matches")).status_code == 405
    assert (await client.request("BREW", "/healthz")).status_code == 405

    text = (await client.get("/metrics")).text
    assert requests(text) == {
        ("POST", "/v1/matches", "202"): 1,
        ("POST", "/v1/matches", "200"): 1,
        ("POST", "/v1/matches", "422"): 1,
        ("POST", "/v1/matches", "413"): 1,  # refused before routing, still its route's
        ("GET", "/v1/matches/{match_id}", "200"): 1,
        ("GET", "/v1/players/{player_id}/matches", "404"): 2,
        ("GET", "unmatched", "404"): 1,
        ("DELETE", "/v1/matches", "405"): 1,
        ("other", "/healthz", "405"): 1,
    }
    assert run not in text  # no raw path, no id, ever becomes a label
    duration = "statsaga_http_request_duration_seconds_count"
    assert sample(text, duration, method="POST", route="/v1/matches") == 4
    ingest = "statsaga_ingest_duration_seconds_count"
    assert [sample(text, ingest, outcome=o) for o in ("accepted", "repeated", "rejected")] == [
        1,
        1,
        2,
    ]
    assert sample(text, ingest, outcome="failed") == 0
    # The scrape-time view of the saga log: the accepted match is open.
    assert sample(text, "statsaga_sagas_open", state="accepted") == 1

    again = (await client.get("/metrics")).text  # the first scrape is counted, too
    assert requests(again)[("GET", "/metrics", "200")] == 1


async def test_every_documented_route_is_labelled_with_its_template(
    api: tuple[httpx.AsyncClient, Metrics],
) -> None:
    client, _ = api
    paths: dict[str, Any] = (await client.get("/openapi.json")).json()["paths"]
    for template, operations in paths.items():
        concrete = re.sub(r"\{[^}]+\}", "x", template)
        for method in operations:
            await client.request(method.upper(), concrete)  # no key: the label is the point
    labelled = {route for _, route, _ in requests((await client.get("/metrics")).text)}
    assert labelled == {*paths, "/openapi.json"}  # the schema itself was fetched too


async def test_metrics_answer_prometheus_text_or_openmetrics_as_asked(
    api: tuple[httpx.AsyncClient, Metrics],
) -> None:
    client, _ = api
    plain = await client.get("/metrics")  # no key: like the health checks
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE statsaga_http_requests_total counter" in plain.text
    open_metrics = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.rstrip().endswith("# EOF")


async def test_metrics_are_documented_as_text_in_the_openapi_schema(
    api: tuple[httpx.AsyncClient, Metrics],
) -> None:
    client, _ = api
    schema: dict[str, Any] = (await client.get("/openapi.json")).json()
    answer = schema["paths"]["/metrics"]["get"]["responses"]["200"]
    assert "text/plain" in answer["content"]
    assert "security" not in schema["paths"]["/metrics"]["get"]


def test_apps_in_one_process_keep_their_own_metrics() -> None:
    first, second = Metrics(), Metrics()  # no clash on prometheus-client's global registry
    assert first.api is not None and second.api is not None
    first.api.request("GET", "/healthz", 200, 0.01)
    assert first.registry.get_sample_value(
        "statsaga_http_requests_total", {"method": "GET", "route": "/healthz", "status": "200"}
    )
    assert (
        second.registry.get_sample_value(
            "statsaga_http_requests_total", {"method": "GET", "route": "/healthz", "status": "200"}
        )
        is None
    )
