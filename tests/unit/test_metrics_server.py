"""The metrics port of a worker run without the API: served, stopped, refused clearly."""

from __future__ import annotations

import socket

import httpx
import pytest

from app.entrypoints.hosting import serve_worker_metrics
from app.observability.metrics import Metrics
from app.settings import Settings
from devstack.processes import free_port


def test_a_worker_serves_its_registry_on_the_metrics_port_until_stopped() -> None:
    metrics = Metrics(api=False)
    assert metrics.worker is not None
    metrics.worker.retries.inc(2)
    port = free_port()
    stop = serve_worker_metrics(Settings(metrics_port=port), metrics)
    assert stop is not None
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert response.status_code == 200
        assert "statsaga_player_retries_total 2.0" in response.text
        assert "statsaga_http_requests_total" not in response.text  # the api's, not here
    finally:
        stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


def test_a_taken_metrics_port_stops_the_worker_with_what_to_do() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as stopped:
            serve_worker_metrics(Settings(metrics_port=port), Metrics(api=False))
    message = str(stopped.value)
    assert f"127.0.0.1:{port}" in message and "STATSAGA_METRICS_PORT" in message


def test_metrics_port_zero_serves_nothing() -> None:
    assert serve_worker_metrics(Settings(metrics_port=0), Metrics(api=False)) is None
