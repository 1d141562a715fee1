"""The real service as child processes against the session's Azurite and local Service
Bus brokers, driven over HTTP: ``statsaga run`` (one process, embedded Ray), and the
``api`` and ``worker`` roles as separate processes joined through a Ray head."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.devstack import Azurite, RayHead, free_port, spawn_role, start_ray_head
from tests.conftest import BrokerFactory
from tests.support.client import StatsClient
from tests.support.servicebus import project_queues

KEYS = {"ingest": "e2e-ingest-key", "read": "e2e-read-key", "admin": "e2e-admin-key"}


@dataclass
class Service:
    """One statsaga process: ``command`` is ``run``, ``api`` or ``worker``."""

    command: str
    env: dict[str, str]
    log: Path
    base_url: str = ""
    proc: subprocess.Popen[bytes] | None = field(default=None)
    _offset: int = 0  # where this start's output begins in the log

    def start(self) -> Service:
        """Start it (again), appending to its log."""
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        self.proc = spawn_role(self.command, self.env, self.log)
        return self

    def output(self) -> str:
        """What this start has logged so far."""
        return self.log.read_bytes()[self._offset :].decode(errors="replace")

    def check_alive(self) -> None:
        """Raise with the end of its log if it exited."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            code = self.proc.returncode
            raise RuntimeError(f"{self.command} exited ({code}):\n{self.output()[-4000:]}")

    def wait_log(self, text: str, timeout_s: float) -> None:
        """Block until ``text`` appears in the log (a role without HTTP says it is up)."""
        deadline = time.monotonic() + timeout_s
        while text not in self.log.read_text(errors="replace"):
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.command} exited ({self.proc.returncode}):\n{self.output()[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.command}: no {text!r} after {timeout_s}s\n{self.output()[-4000:]}"
                )
            time.sleep(0.2)

    def wait_ready(self, timeout_s: float) -> None:
        """Block until ``/readyz`` answers 200."""
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.command} exited ({self.proc.returncode}):\n{self.output()[-4000:]}"
                )
            try:
                response = httpx.get(f"{self.base_url}/readyz", timeout=2)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise TimeoutError(f"not ready after {timeout_s}s: {last}\n{self.output()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL by PID: a crash, nothing graceful."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGINT (graceful), then SIGKILL, by PID."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def service_env(azurite: Azurite, bus_connection_string: str, data: Path) -> dict[str, str]:
    """Settings of a test service: its own table prefix, keys, data dir."""
    env = {
        **os.environ,
        "STATSAGA_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "STATSAGA_SERVICEBUS_CONNECTION_STRING": bus_connection_string,
        "STATSAGA_STORAGE_PREFIX": f"e{uuid.uuid4().hex[:8]}",
        "STATSAGA_API_KEYS": ",".join(f"{k}:{role}" for role, k in KEYS.items()),
        "STATSAGA_DATA_DIR": str(data),
        "STATSAGA_RAY_NUM_CPUS": "2",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="session")
def service(
    azurite: Azurite, broker_factory: BrokerFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """``statsaga run`` on a free port with a broker of its own."""
    data = tmp_path_factory.mktemp("service")
    broker = broker_factory(project_queues(lock_s=10), name="run-broker")
    port = free_port()
    env = {**service_env(azurite, broker.connection_string, data), "STATSAGA_PORT": str(port)}
    service = Service("run", env, data / "statsaga.log", f"http://127.0.0.1:{port}").start()
    try:
        service.wait_ready(120)
        yield service
    finally:
        service.stop()


@pytest.fixture
def client(service: Service) -> Iterator[StatsClient]:
    """An API client holding one key of each role."""
    c = StatsClient(service.base_url, KEYS)
    yield c
    c.http.close()


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    """A Ray head that separate api and worker processes join."""
    # Ray's socket paths must stay short (108 bytes): a short temp dir of its own.
    temp = Path(tempfile.mkdtemp(prefix="sgray-"))
    head = start_ray_head(temp, num_cpus=2, log=tmp_path_factory.mktemp("ray") / "head.log")
    try:
        yield head
    finally:
        head.stop()
        shutil.rmtree(temp, ignore_errors=True)
