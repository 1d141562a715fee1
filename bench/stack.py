"""The local stack a benchmark runs against, as child processes stopped by PID: Azurite,
the Service Bus broker and a Ray head (shared by every phase), and a deployment (one
``statsaga worker``, one ``statsaga api``, and the actor pools in a Ray namespace of
their own) that a phase may replace with another one, for example with faults injected.
A replaced deployment's actors stay in the head, idle, until the head stops."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.runtime.lifeline import die_with_parent
from devstack.processes import Azurite, free_port, spawn_role, start_azurite, stop_process
from devstack.ray_cluster import RayHead, start_ray_head
from sbemu.launcher import LocalBroker, start_broker

SERVICEBUS_CONFIG = Path(__file__).resolve().parent.parent / "config" / "servicebus.json"
KEYS = {
    "ingest": "bench-ingest-0123456789",
    "read": "bench-read-0123456789",
    "admin": "bench-admin-0123456789",
}
WORKER_UP = "statsaga worker is up"
# Deployments not yet stopped: ``stop_all`` stops them whatever interrupted the run.
_RUNNING: list[Deployment] = []


@dataclass
class Dependencies:
    """Azurite, the broker and a Ray head, and where their data and the logs go."""

    root: Path
    azurite: Azurite
    broker: LocalBroker
    head: RayHead

    def stop(self) -> None:
        """Stop them, by PID."""
        self.head.stop()
        shutil.rmtree(self.head.temp_dir, ignore_errors=True)
        self.broker.stop()
        self.azurite.stop()


@contextlib.contextmanager
def dependencies(root: Path) -> Iterator[Dependencies]:
    """Start Azurite, the broker and a Ray head under ``root``; stop them when done."""
    started: list[Azurite | LocalBroker | RayHead] = []
    try:
        # Silent: its access log (a line per request) costs CPU that Azure would not. In
        # memory: persisted, it stops every 5 s to write its whole database, pauses that
        # grow through a run and that Azure does not have (docs/performance.md).
        started.append(azurite := start_azurite(root / "azurite", in_memory=True))
        log = root / "servicebus.log"
        started.append(
            broker := start_broker(
                root / "servicebus", SERVICEBUS_CONFIG, log=log, preexec_fn=die_with_parent()
            )
        )
        # Ray's socket paths must stay short: its session lives outside the project tree.
        ray_dir = Path(tempfile.mkdtemp(prefix="statsaga-bench-ray-"))
        started.append(head := start_ray_head(ray_dir, log=root / "ray.log"))
    except BaseException:
        for part in reversed(started):
            part.stop()
        raise
    deps = Dependencies(root, azurite, broker, head)
    try:
        yield deps
    finally:
        deps.stop()


@dataclass
class Deployment:
    """A worker and an api over ``deps``, with table prefix and Ray namespace ``prefix``."""

    deps: Dependencies
    prefix: str
    env: dict[str, str]
    api_url: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def check_alive(self) -> None:
        """Raise, naming the log, if the api or the worker exited."""
        for proc, name in zip(self.procs, ("worker", "api"), strict=False):
            if proc.poll() is not None:
                log = self.deps.root / f"{self.prefix}-{name}.log"
                raise RuntimeError(f"statsaga {name} exited ({proc.returncode}); see {log}")

    def stop(self) -> None:
        """The api, then the worker (graceful), by PID."""
        if self in _RUNNING:
            _RUNNING.remove(self)
        for proc in reversed(self.procs):
            proc.send_signal(2)  # SIGINT: a graceful stop
        for proc in reversed(self.procs):
            stop_process(proc, grace_s=30.0)


def start_deployment(
    deps: Dependencies,
    prefix: str,
    settings: Mapping[str, str] | None = None,
    worker_settings: Mapping[str, str] | None = None,
) -> Deployment:
    """Start the worker (it creates the pools, and its actors take ``worker_settings``
    too), then the api; return once the worker consumes and the api is ready.
    ``settings`` are ``STATSAGA_*`` variables of both."""
    port = free_port()
    env = {
        **os.environ,
        "STATSAGA_STORAGE_CONNECTION_STRING": deps.azurite.connection_string,
        "STATSAGA_SERVICEBUS_CONNECTION_STRING": deps.broker.connection_string,
        "STATSAGA_SERVICEBUS_ADMIN_CONNECTION_STRING": deps.broker.admin_connection_string,
        "STATSAGA_STORAGE_PREFIX": prefix,
        "STATSAGA_RAY_NAMESPACE": prefix,
        "STATSAGA_API_KEYS": ",".join(f"{k}:{role}" for role, k in KEYS.items()),
        "STATSAGA_PORT": str(port),
        "STATSAGA_METRICS_PORT": str(free_port()),
        "STATSAGA_DATA_DIR": str(deps.root),
        # The benchmark is the only client: no per-key limit on what it offers.
        "STATSAGA_INGEST_RATE_PER_S": "0",
        "STATSAGA_READ_RATE_PER_S": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        **deps.head.env,
        **(settings or {}),
    }
    deployment = Deployment(deps, prefix, env, f"http://127.0.0.1:{port}")
    _RUNNING.append(deployment)
    try:
        worker_log = deps.root / f"{prefix}-worker.log"
        worker_env = {**env, **(worker_settings or {})}
        deployment.procs.append(spawn_role("worker", worker_env, worker_log))
        _wait_for_text(worker_log, WORKER_UP, 120, deployment)
        deployment.procs.append(spawn_role("api", env, deps.root / f"{prefix}-api.log"))
        _wait_ready(deployment, 120)
    except BaseException:
        deployment.stop()
        raise
    return deployment


def stop_all() -> None:
    """Stop every deployment still running (an interrupted run)."""
    for deployment in list(_RUNNING):
        deployment.stop()


def _wait_for_text(log: Path, text: str, timeout_s: float, deployment: Deployment) -> None:
    deadline = time.monotonic() + timeout_s
    while not (log.exists() and text in log.read_text(errors="replace")):
        deployment.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {text!r} after {timeout_s}s; see {log}")
        time.sleep(0.2)


def _wait_ready(deployment: Deployment, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        deployment.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{deployment.api_url}/readyz", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the api is not ready after {timeout_s}s")
        time.sleep(0.3)
