"""``statsaga dev``: the local dependencies (devstack/processes.py, sbemu) and the ``api`` and
``worker`` roles as child processes of one supervisor, which restarts a role that dies and
stops everything, each by its PID, when it is told to stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from app.dev_endpoints import (
    DEV_BLOB_PORT,
    DEV_BUS_ADMIN_PORT,
    DEV_BUS_PORT,
    DEV_RAY_FILE,
    DEV_TABLE_PORT,
)
from app.runtime.lifeline import die_with_parent
from devstack.processes import Azurite, spawn_role, start_azurite, stop_process
from devstack.ray_cluster import RayHead, start_ray_head

if TYPE_CHECKING:
    from app.settings import Settings
    from sbemu.launcher import LocalBroker

# Signals that stop `statsaga dev`: Ctrl-C is the usual way (exit 0); SIGTERM and SIGHUP (a
# closed terminal) stop it the same way but exit 128 + the signal, as a killed process does.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Part(Protocol):
    def stop(self) -> None: ...


@dataclass
class Role:
    """One statsaga role run as a child process by ``statsaga dev``, restarted if it dies."""

    name: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it; its output goes to its log file."""
        self.proc = spawn_role(self.name, self.env, self.log)
        print(f"  {self.name:<6} pid {self.proc.pid} (log {self.log})", flush=True)

    def stop(self) -> None:
        """SIGTERM (a graceful stop: in-flight messages finish), SIGKILL after 30 s."""
        if self.proc is not None:
            stop_process(self.proc, grace_s=30.0)


@dataclass
class _Removed:
    """A file or directory of the running stack, removed when it stops (it would point at
    nothing, or hold a stopped Ray's session)."""

    path: Path

    def stop(self) -> None:
        if self.path.is_dir():
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            self.path.unlink(missing_ok=True)


@dataclass
class _Stack:
    """What the supervisor started, stopped in the reverse order: the roles, then the
    dependencies."""

    parts: list[_Part] = field(default_factory=list)
    roles: list[Role] = field(default_factory=list)

    def stop(self) -> None:
        for role in reversed(self.roles):
            role.stop()
        for part in reversed(self.parts):
            part.stop()


class _StopSignals:
    """Which stop signal came, if any. While the stack is still starting (a start can take
    a minute), the first one interrupts the start instead of waiting for it."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.starting = True
        self._previous = {s: signal.signal(s, self._on_signal) for s in _STOP_SIGNALS}

    def _on_signal(self, signum: int, frame: object) -> None:
        first = self.signum is None
        self.signum = signum
        if first and self.starting:
            raise KeyboardInterrupt

    def ignore(self) -> None:
        """While stopping: a second Ctrl-C must not cut the stop short."""
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @property
    def exit_code(self) -> int:
        return 0 if self.signum in (None, signal.SIGINT) else 128 + self.signum


def dev_stack(
    settings: Settings,
    servicebus_config: Path,
    restart_after_s: float = 2.0,
    free_ports: bool = False,
) -> int:
    """``statsaga dev``: Azurite, the local Service Bus broker and a Ray head as child
    processes, then the ``api`` and ``worker`` roles; a role that dies is restarted, so
    killing the worker by PID shows matches waiting in the queue and then completing.
    Ctrl-C, SIGTERM or SIGHUP stop everything, each by its PID; if this process dies
    without stopping them (SIGKILL), each child gets SIGTERM from the kernel.
    ``free_ports``: Azurite and the broker on free ports, not the well-known ones."""
    data = Path(settings.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    stack = _Stack()
    signals = _StopSignals()
    try:
        azurite = _start_azurite(stack, data, free_ports)
        broker = _start_broker(stack, data, servicebus_config, free_ports)
        head = _start_ray(stack, data, settings)
        env = _role_env(settings, azurite, broker, head)
        stack.roles = [Role(n, env, data / f"{n}.log") for n in ("worker", "api")]
        signals.starting = False
        print("Starting statsaga (ctrl-C stops everything):", flush=True)
        for role in stack.roles:
            role.start()
        _print_addresses(settings)
        _supervise(stack.roles, signals, restart_after_s)
    except KeyboardInterrupt:
        pass
    finally:
        signals.ignore()
        print("Stopping ...", flush=True)
        stack.stop()
        signals.restore()
        print("Stopped.", flush=True)
    return signals.exit_code


def _start_azurite(stack: _Stack, data: Path, free_ports: bool) -> Azurite:
    blob_port, table_port = (None, None) if free_ports else (DEV_BLOB_PORT, DEV_TABLE_PORT)
    print(f"Starting Azurite (data in {data / 'azurite'}) ...", flush=True)
    azurite = start_azurite(data / "azurite", blob_port, table_port, log=data / "azurite.log")
    stack.parts.append(azurite)
    print(
        f"  azurite pid {azurite.proc.pid}: blob :{azurite.blob_port}, table :{azurite.table_port}",
        flush=True,
    )
    return azurite


def _start_broker(stack: _Stack, data: Path, config: Path, free_ports: bool) -> LocalBroker:
    from sbemu.launcher import start_broker

    print(f"Starting the Service Bus broker (data in {data / 'servicebus'}) ...", flush=True)
    broker = start_broker(
        data / "servicebus",
        config,
        None if free_ports else DEV_BUS_PORT,
        log=data / "servicebus.log",
        admin_port=0 if free_ports else DEV_BUS_ADMIN_PORT,
        preexec_fn=die_with_parent(),
    )
    stack.parts.append(broker)
    print(
        f"  broker  pid {broker.pid}: amqp :{broker.port}, admin http :{broker.admin_port}",
        flush=True,
    )
    return broker


def _start_ray(stack: _Stack, data: Path, settings: Settings) -> RayHead:
    """A Ray head, and the file that tells `statsaga pools` (run in another terminal) how
    to join it."""
    print("Starting a Ray head ...", flush=True)
    # Ray's socket paths must stay short: keep its session outside the project tree.
    ray_dir = Path(tempfile.mkdtemp(prefix="statsaga-ray-"))
    stack.parts.append(_Removed(ray_dir))
    head = start_ray_head(ray_dir, num_cpus=settings.ray_num_cpus, log=data / "ray.log")
    stack.parts.append(head)
    print(f"  ray     pid {head.proc.pid}: {head.address}, actor logs in", flush=True)
    print(f"          {ray_dir / 'session_latest' / 'logs'}/worker-*.err", flush=True)
    print(f"Ray head ready. Join it with: {' '.join(f'{k}={v}' for k, v in head.env.items())}")
    ray_env = data / DEV_RAY_FILE
    ray_env.write_text("".join(f"{k}={v}\n" for k, v in head.env.items()))
    stack.parts.append(_Removed(ray_env))
    return head


def _role_env(
    settings: Settings, azurite: Azurite, broker: LocalBroker, head: RayHead
) -> dict[str, str]:
    """The roles' environment: this one, pointed at the stack just started."""
    return {
        **os.environ,
        "STATSAGA_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "STATSAGA_SERVICEBUS_CONNECTION_STRING": broker.connection_string,
        "STATSAGA_SERVICEBUS_ADMIN_CONNECTION_STRING": broker.admin_connection_string,
        "STATSAGA_API_KEYS": ",".join(f"{k}:{r.value}" for k, r in settings.api_keys.items()),
        **head.env,
    }


def _print_addresses(settings: Settings) -> None:
    url = f"http://{settings.host}:{settings.port}"
    print(f"API on {url}", flush=True)
    print(f"Pages: {url}/ops (operator console, admin key), {url}/players/ID", flush=True)
    print(f"Metrics: {url}/metrics (api)", flush=True)
    if settings.metrics_port:
        print(
            f"         http://{settings.host}:{settings.metrics_port}/metrics (worker)",
            flush=True,
        )


def _supervise(roles: list[Role], signals: _StopSignals, restart_after_s: float) -> None:
    """Until a stop signal: restart a role that exited."""
    while signals.signum is None:
        time.sleep(0.5)
        for role in roles:
            if role.proc is not None and role.proc.poll() is not None and signals.signum is None:
                print(f"{role.name} exited ({role.proc.returncode}); restarting it", flush=True)
                time.sleep(restart_after_s)
                role.start()
