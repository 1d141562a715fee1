"""Chaos runs: real Azurite, a real Ray head, the local Service Bus broker, and separate
``api`` and ``worker`` processes, with faults injected through ``STATSAGA_FAULTS`` and by
killing processes. Each scenario gets its own Ray namespace (so its own pools, built with
its own fault plan) and its own tables."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.devstack import Azurite, RayHead, free_port
from sbemu.launcher import LocalBroker
from tests.conftest import BrokerFactory
from tests.e2e.conftest import KEYS, Service, ray_head, service_env
from tests.support.client import StatsClient
from tests.support.servicebus import project_queues

__all__ = ["ray_head"]
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
        self.api.stop()
        self.worker.stop()


StartScenario = Callable[..., Scenario]


@pytest.fixture(scope="module")
def start_scenario(
    azurite: Azurite,
    broker_factory: BrokerFactory,
    ray_head: RayHead,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StartScenario]:
    """``start_scenario(name, faults, **worker_env)`` → a running api + worker with those
    faults (and settings) in the worker, and so in the actors it creates; all stopped at
    the end of the module."""
    started: list[Scenario] = []

    def start(name: str, faults: str, **worker_env: str) -> Scenario:
        data: Path = tmp_path_factory.mktemp(name)
        # A broker of its own (queues are shared by whoever connects: another scenario's
        # worker would take this one's messages), with short locks, so that a lost
        # settlement or a killed worker's messages come back within seconds.
        broker = broker_factory(project_queues(lock_s=5), name=f"{name}-broker")
        env = {
            **service_env(azurite, broker.connection_string, data),
            **ray_head.env,
            **FAST_RECOVERY,
            "STATSAGA_RAY_NAMESPACE": f"chaos-{name}-{uuid.uuid4().hex[:6]}",
        }
        worker_env = {**env, **worker_env, "STATSAGA_FAULTS": faults}
        worker = Service("worker", worker_env, data / "worker.log")
        worker.start()
        worker.wait_log(WORKER_UP, 120)
        port = free_port()
        api_env = {**env, "STATSAGA_PORT": str(port)}
        api = Service("api", api_env, data / "api.log", f"http://127.0.0.1:{port}").start()
        scenario = Scenario(
            api,
            worker,
            StatsClient(api.base_url, KEYS),
            env,
            env["STATSAGA_STORAGE_PREFIX"],
            broker,
        )
        started.append(scenario)
        api.wait_ready(120)
        return scenario

    try:
        yield start
    finally:
        for scenario in started:
            scenario.stop()
