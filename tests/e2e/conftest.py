"""The real service (``statsaga run``: embedded Ray, actor pools, API, worker) as a child
process against the session's Azurite, driven over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.devstack import Azurite, free_port
from tests.support.client import StatsClient

KEYS = {"ingest": "e2e-ingest-key", "read": "e2e-read-key", "admin": "e2e-admin-key"}


@dataclass
class Service:
    """A running statsaga process."""

    proc: subprocess.Popen[bytes]
    base_url: str
    log: Path


def _wait_ready(service: Service, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if service.proc.poll() is not None:
            raise RuntimeError(
                f"statsaga exited ({service.proc.returncode}):\n" + service.log.read_text()[-4000:]
            )
        try:
            response = httpx.get(f"{service.base_url}/readyz", timeout=2)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise TimeoutError(
        f"statsaga not ready after {timeout_s}s: {last}\n" + service.log.read_text()[-4000:]
    )


@pytest.fixture(scope="session")
def service(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``statsaga run`` on a free port; stopped with SIGINT (then SIGKILL) by PID."""
    data = tmp_path_factory.mktemp("service")
    port = free_port()
    env = {
        **os.environ,
        "STATSAGA_PORT": str(port),
        "STATSAGA_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "STATSAGA_STORAGE_PREFIX": f"e{uuid.uuid4().hex[:8]}",
        "STATSAGA_API_KEYS": ",".join(f"{k}:{role}" for role, k in KEYS.items()),
        "STATSAGA_DATA_DIR": str(data),
        "STATSAGA_RAY_NUM_CPUS": "2",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    log = data / "statsaga.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = Service(proc, f"http://127.0.0.1:{port}", log)
    try:
        _wait_ready(service, 120)
        yield service
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def client(service: Service) -> Iterator[StatsClient]:
    """An API client holding one key of each role."""
    c = StatsClient(service.base_url, KEYS)
    yield c
    c.http.close()
