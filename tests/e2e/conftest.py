"""The real service as child processes against the session's Azurite and local Service
Bus brokers, driven over HTTP: ``statsaga run`` (one process, embedded Ray), and the
``api`` and ``worker`` roles as separate processes joined through a Ray head
(``start_scenario``: one api + one worker with settings and faults of their own, used by
the scaling, cluster and chaos tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from devstack.processes import Azurite, free_port, spawn_role
from devstack.ray_cluster import RayHead
from sbemu.launcher import LocalBroker
from tests.conftest import BrokerFactory
from tests.support.client import StatsClient
from tests.support.raypools import kill_pools_on
from tests.support.servicebus import project_queues

KEYS = {
    "ingest": "e2e-ingest-key-0123456789",
    "read": "e2e-read-key-0123456789",
    "admin": "e2e-admin-key-0123456789",
}


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
        """Block until ``text`` appears in this start's output (a role without HTTP says
        it is up; a line from an earlier start of the same log does not count)."""
        deadline = time.monotonic() + timeout_s
        while text not in self.output():
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
        stop_all([self])


def stop_all(services: list[Service]) -> None:
    """Stop several at once: SIGINT (graceful) to each, then wait; SIGKILL, by PID, any
    that is not gone 30 s after its signal. (One by one, a module's teardown added up
    seconds of each process's shutdown.)"""
    running = [s.proc for s in services if s.proc is not None and s.proc.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 30
    for proc in running:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def service_env(azurite: Azurite, broker: LocalBroker, data: Path) -> dict[str, str]:
    """Settings of a test service: its own table prefix, keys, data dir; the broker's
    AMQP and administration ports."""
    env = {
        **os.environ,
        "STATSAGA_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "STATSAGA_SERVICEBUS_CONNECTION_STRING": broker.connection_string,
        "STATSAGA_SERVICEBUS_ADMIN_CONNECTION_STRING": broker.admin_connection_string,
        "STATSAGA_STORAGE_PREFIX": f"e{uuid.uuid4().hex[:8]}",
        "STATSAGA_API_KEYS": ",".join(f"{k}:{role}" for role, k in KEYS.items()),
        "STATSAGA_DATA_DIR": str(data),
        "STATSAGA_RAY_NUM_CPUS": "2",
        # Workers of parallel runs must not race for the default port: tests pick one.
        "STATSAGA_METRICS_PORT": "0",
        # Every test calls from 127.0.0.1 and some send unknown keys on purpose (the
        # contract fuzzer, many): the limit on them is tested in tests/integration.
        "STATSAGA_AUTH_FAILURES_PER_MIN": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="package")
def service(
    azurite: Azurite, broker_factory: BrokerFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """``statsaga run`` on a free port with a broker of its own, for the tests of this
    package: stopped after them, not idle to the end of the session."""
    data = tmp_path_factory.mktemp("service")
    broker = broker_factory(project_queues(lock_s=10), name="run-broker", session=True)
    port = free_port()
    env = {
        **service_env(azurite, broker, data),
        "STATSAGA_PORT": str(port),
        # The contract test fuzzes resizes: they must not start dozens of actors here.
        "STATSAGA_MAX_POOL_SIZE": "2",
    }
    service = Service("run", env, data / "statsaga.log", f"http://127.0.0.1:{port}").start()
    try:
        service.wait_ready(120)
        yield service
    finally:
        service.stop()
        broker.stop()


@pytest.fixture
def client(service: Service) -> Iterator[StatsClient]:
    """An API client holding one key of each role."""
    c = StatsClient(service.base_url, KEYS)
    yield c
    c.http.close()


WORKER_UP = "statsaga worker is up"
# Quick durable retries and stall detection, so that a run converges in seconds.
FAST_RECOVERY = {
    "STATSAGA_RETRY_BASE_S": "0.2",
    "STATSAGA_RETRY_CAP_S": "2",
    "STATSAGA_RETRY_MAX_ATTEMPTS": "10",
    "STATSAGA_STALL_AFTER_S": "15",
    "STATSAGA_STALL_INTERVAL_S": "3",
    "STATSAGA_OUTBOX_GRACE_S": "5",
    "STATSAGA_OUTBOX_INTERVAL_S": "2",
    "STATSAGA_LOCK_RENEWAL_S": "120",
}


@dataclass
class Scenario:
    """One api + one worker process over the shared Ray head and broker."""

    api: Service
    worker: Service
    client: StatsClient
    env: dict[str, str]
    prefix: str
    broker: LocalBroker
    _stopped: list[Service] = field(default_factory=list)

    def restart_worker(self) -> None:
        """Start the worker again after a kill, and wait until it consumes."""
        self.worker.start()
        self.worker.wait_log(WORKER_UP, 120)

    def stop(self) -> None:
        """Stop both processes (graceful, then by force), by PID."""
        self.client.http.close()
        stop_all([self.api, self.worker])


StartScenario = Callable[..., Scenario]


def launch_scenario(
    name: str,
    faults: str,
    azurite: Azurite,
    broker_factory: BrokerFactory,
    ray_head: RayHead,
    tmp_path_factory: pytest.TempPathFactory,
    started: list[Scenario],
    session: bool = False,
    **worker_env: str,
) -> Scenario:
    """Start an api + worker with ``faults`` (and settings) in the worker, and so in the
    actors it creates; added to ``started`` (to be stopped) before it is waited for.
    ``session``: its broker lives to the end of the session, not of the module."""
    data: Path = tmp_path_factory.mktemp(name)
    # A broker of its own (queues are shared by whoever connects: another scenario's
    # worker would take this one's messages), with short locks, so that a lost
    # settlement or a killed worker's messages come back within seconds.
    broker = broker_factory(project_queues(lock_s=5), name=f"{name}-broker", session=session)
    env = {
        **service_env(azurite, broker, data),
        **ray_head.env,
        **FAST_RECOVERY,
        "STATSAGA_RAY_NAMESPACE": f"chaos-{name}-{uuid.uuid4().hex[:6]}",
    }
    worker = Service(
        "worker", {**env, **worker_env, "STATSAGA_FAULTS": faults}, data / "worker.log"
    )
    port = free_port()
    api_env = {**env, "STATSAGA_PORT": str(port)}
    api = Service("api", api_env, data / "api.log", f"http://127.0.0.1:{port}")
    # Both at once, as `statsaga dev` starts them: the api is ready once the worker has
    # created the pools (its readiness pings them).
    worker.start()
    api.start()
    scenario = Scenario(
        api, worker, StatsClient(api.base_url, KEYS), env, env["STATSAGA_STORAGE_PREFIX"], broker
    )
    started.append(scenario)
    worker.wait_log(WORKER_UP, 120)
    api.wait_ready(120)
    return scenario


def stop_scenarios(started: list[Scenario], ray_head: RayHead | None) -> None:
    """Stop every process of ``started`` at once; then their pools on ``ray_head``, which
    outlives them (None: the head stops next, and its actors with it)."""
    for scenario in started:
        scenario.client.http.close()
    stop_all([p for scenario in started for p in (scenario.api, scenario.worker)])
    if ray_head is not None:
        kill_pools_on(ray_head, [s.env["STATSAGA_RAY_NAMESPACE"] for s in started])


@pytest.fixture(scope="module")
def start_scenario(
    azurite: Azurite,
    broker_factory: BrokerFactory,
    ray_head: RayHead,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StartScenario]:
    """``start_scenario(name, faults, **worker_env)`` → a running api + worker with those
    faults (and settings) in the worker, and so in the actors it creates; all stopped, and
    their pools too, at the end of the module."""
    started: list[Scenario] = []

    def start(name: str, faults: str, **worker_env: str) -> Scenario:
        return launch_scenario(
            name, faults, azurite, broker_factory, ray_head, tmp_path_factory, started, **worker_env
        )

    try:
        yield start
    finally:
        stop_scenarios(started, ray_head)
