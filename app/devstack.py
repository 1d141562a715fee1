"""Local dependencies as child processes, started on loopback ports and stopped by PID:
Azurite from the project's node_modules, a Ray head, and ``statsaga dev``'s supervisor of
the api and worker roles. Used by ``statsaga dev`` and the test fixtures."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.lifeline import die_with_parent

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AZURITE_MAIN = PROJECT_ROOT / "node_modules" / "azurite" / "dist" / "src" / "azurite.js"
# Azurite's well-known development account (public, documented by Microsoft).
DEV_ACCOUNT = "devstoreaccount1"
# `statsaga dev` uses the usual local ports, so that tools such as Azure Storage Explorer
# and Service Bus Explorer find them.
DEV_BLOB_PORT, DEV_TABLE_PORT, DEV_BUS_PORT = 10000, 10002, 5672
# Where Microsoft's Service Bus emulator serves the administration API (queue depths).
DEV_BUS_ADMIN_PORT = 5300
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:``port`` (connections left in TIME_WAIT by a
    server that just stopped do not count: servers bind with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until something accepts on ``port``; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode} during start")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


def servicebus_connection_string(port: int, host: str = "127.0.0.1") -> str:
    """Connection string for a local Service Bus broker (sbemu, or Microsoft's emulator):
    ``UseDevelopmentEmulator=true`` turns TLS off and keeps the port."""
    return (
        f"Endpoint=sb://{host}:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=local;UseDevelopmentEmulator=true"
    )


def connection_string(blob_port: int, table_port: int, host: str = "127.0.0.1") -> str:
    """Connection string for Azurite's Blob and Table services on these ports."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{DEV_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table_port}/{DEV_ACCOUNT};"
    )


@dataclass
class Azurite:
    """A running Azurite: its process, ports and connection string."""

    proc: subprocess.Popen[bytes]
    blob_port: int
    table_port: int
    location: Path

    @property
    def connection_string(self) -> str:
        """Connection string for this instance."""
        return connection_string(self.blob_port, self.table_port)

    def stop(self) -> None:
        """Stop it by PID: SIGTERM, then SIGKILL after 5 s."""
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """Terminate one child process we started, by its PID only."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace_s)


def start_azurite(
    location: Path,
    blob_port: int | None = None,
    table_port: int | None = None,
    log: Path | None = None,
    in_memory: bool = False,
) -> Azurite:
    """Start Azurite (Blob + Table; Queue on a throwaway port) with data in ``location``.

    ``in_memory``: keep nothing on disk. Persisted, Azurite writes its whole database to
    disk every 5 s on its one thread (LokiJS autosave), a pause that grows with the data
    and holds every request behind it."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH: install Node.js 20 (see README)")
    if not AZURITE_MAIN.exists():
        raise RuntimeError(f"{AZURITE_MAIN} is missing: run `npm ci` in {PROJECT_ROOT}")
    location.mkdir(parents=True, exist_ok=True)
    for wanted in (blob_port, table_port):
        # Otherwise the wait below would find the other server and take it for ours.
        if wanted and not port_is_free(wanted):
            raise RuntimeError(f"port {wanted} is taken: stop what uses it, or pick other ports")
    blob_port = blob_port or free_port()
    table_port = table_port or free_port()
    args = [
        node,
        str(AZURITE_MAIN),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(blob_port),
        "--tableHost",
        "127.0.0.1",
        "--tablePort",
        str(table_port),
        "--queueHost",
        "127.0.0.1",
        "--queuePort",
        str(free_port()),
        # Azurite refuses a location with in-memory persistence (its debug log, when
        # asked for, still goes to ``log``).
        *(["--inMemoryPersistence"] if in_memory else ["--location", str(location)]),
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
    ]
    if log is None:
        args.append("--silent")
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - child owns it
    # The node process itself is the child (no shell in between), so its PID is the one
    # we stop; a new session keeps a Ctrl-C in the terminal from reaching it twice.
    proc = subprocess.Popen(
        args,
        stdout=out,
        stderr=out,
        start_new_session=True,
        preexec_fn=die_with_parent(),
        env={**os.environ, "AZURITE_ACCEPT_EULA": "true"},
    )
    try:
        wait_for_port(blob_port, 30, proc)
        wait_for_port(table_port, 30, proc)
    except BaseException:
        stop_process(proc)
        raise
    return Azurite(proc, blob_port, table_port, location)


@contextlib.contextmanager
def running_azurite(location: Path) -> Iterator[Azurite]:
    """``start_azurite`` as a context manager that always stops it."""
    azurite = start_azurite(location)
    try:
        yield azurite
    finally:
        azurite.stop()


@dataclass
class RayHead:
    """A Ray head node started with ``ray start --head --block``: SIGTERM to that one
    process stops the GCS, the raylet and every actor it started."""

    proc: subprocess.Popen[bytes]
    port: int
    temp_dir: Path

    @property
    def address(self) -> str:
        """What ``RAY_ADDRESS`` should be for processes joining this head."""
        return f"127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment of a process that joins: the address and the cluster's token."""
        return {"RAY_ADDRESS": self.address, **ray_auth_env(self.temp_dir)}

    def stop(self) -> None:
        """Stop it by PID (the actors go with it), then whatever of its session is left:
        its dashboard and runtime-env agents were seen to outlive it."""
        stop_process(self.proc, grace_s=15.0)
        # The head was started in a session of its own: its process group is ours alone.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


# A local head stops at once on SIGTERM: by default Ray waits up to 30 s to drain nodes
# that host (detached) actors, and ours hold nothing that is not durable.
LOCAL_RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}


def ray_auth_env(temp_dir: Path) -> dict[str, str]:
    """Ray (>= 2.59) wants token authentication on clusters started with ``ray start``:
    every node and driver reads the same token file."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(temp_dir / "auth_token")}


def start_ray_head(
    temp_dir: Path,
    port: int | None = None,
    num_cpus: int | None = None,
    log: Path | None = None,
    env: dict[str, str] | None = None,
) -> RayHead:
    """Start a single-node Ray cluster on loopback that other processes join by address;
    ``env`` adds settings for its GCS and raylet (``RAY_health_check_*``, say)."""
    ray = Path(sys.executable).parent / "ray"
    temp_dir.mkdir(parents=True, exist_ok=True)
    token = temp_dir / "auth_token"
    if not token.exists():
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
    port = port or free_port()
    args = [
        str(ray),
        "start",
        "--head",
        "--block",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]
    if num_cpus is not None:
        args.append(f"--num-cpus={num_cpus}")
    env = {**(env or {}), **ray_auth_env(temp_dir)}
    proc = _ray_start(args, log or temp_dir / "ray-head.log", env, "Ray head")
    return RayHead(proc, port, temp_dir)


def _ray_start(
    args: list[str], log: Path, env: dict[str, str], what: str
) -> subprocess.Popen[bytes]:
    """Run ``ray start ... --block`` in a session of its own, output appended to ``log``,
    and wait until it says its node is up (and it only watches)."""
    start = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # On SIGTERM `ray start --block` stops its GCS and raylet (started with the
            # kernel's parent-death signal, so they go even if it is SIGKILLed), and
            # the raylet's workers and agents go with the raylet.
            preexec_fn=die_with_parent(),
            env={**os.environ, **LOCAL_RAY_ENV, **env},
        )
    deadline = time.monotonic() + 60
    try:
        while b"block forever" not in log.read_bytes()[start:]:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {proc.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not up after 60s; see {log}")
            time.sleep(0.2)
    except BaseException:
        stop_process(proc, grace_s=15.0)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc


@dataclass
class RayNode:
    """A second Ray node on this machine, joined to a head (a stand-in for another
    machine of the cluster, with its own raylet and worker processes)."""

    proc: subprocess.Popen[bytes]
    temp_dir: Path

    def raylet_pid(self) -> int | None:
        """The node's raylet: a child of its ``ray start --block`` process."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                argv0 = (entry / "cmdline").read_bytes().split(b"\0")[0]
                if ppid == self.proc.pid and argv0.endswith(b"/raylet"):
                    return int(entry.name)
        return None

    def stop(self) -> None:
        """Stop it by PID, then whatever is left of its session."""
        stop_process(self.proc, grace_s=15.0)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def start_ray_node(
    head: RayHead,
    temp_dir: Path,
    num_cpus: int = 1,
    resources: dict[str, float] | None = None,
    log: Path | None = None,
) -> RayNode:
    """Join a second node to ``head``: same token, its own temp dir and worker ports."""
    ray = Path(sys.executable).parent / "ray"
    temp_dir.mkdir(parents=True, exist_ok=True)
    args = [
        str(ray),
        "start",
        f"--address={head.address}",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--num-cpus={num_cpus}",
        f"--resources={json.dumps(resources or {})}",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
        # Apart from the head's default range (10002-19999), as on another machine.
        "--min-worker-port=20002",
        "--max-worker-port=29999",
    ]
    proc = _ray_start(args, log or temp_dir / "ray-node.log", head.env, "Ray node")
    return RayNode(proc, temp_dir)


def spawn_role(role: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``statsaga <role>`` as a child in its own session, output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", role],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # SIGTERM: the role's own graceful stop, as `statsaga dev`'s Ctrl-C does.
            preexec_fn=die_with_parent(),
        )


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
    """A file of the running stack, removed when it stops (it would point at nothing)."""

    path: Path

    def stop(self) -> None:
        self.path.unlink(missing_ok=True)


# Signals that stop `statsaga dev`: Ctrl-C is the usual way (exit 0); SIGTERM and SIGHUP (a
# closed terminal) stop it the same way but exit 128 + the signal, as a killed process does.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _exit_code(signum: int | None) -> int:
    return 0 if signum in (None, signal.SIGINT) else 128 + signum


def dev_stack(
    settings: Any,
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
    from sbemu.launcher import start_broker

    data = Path(settings.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    stack: list[Any] = []
    roles: list[Role] = []
    stopped_by: int | None = None
    ray_dir: Path | None = None

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopped_by
        first = stopped_by is None
        stopped_by = signum
        if first and not roles:
            # Still starting (a start can take a minute): stop now, not after it.
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, _stop) for s in _STOP_SIGNALS}
    blob_port, table_port = (None, None) if free_ports else (DEV_BLOB_PORT, DEV_TABLE_PORT)
    try:
        print(f"Starting Azurite (data in {data / 'azurite'}) ...", flush=True)
        azurite = start_azurite(data / "azurite", blob_port, table_port, log=data / "azurite.log")
        stack.append(azurite)
        print(
            f"  azurite pid {azurite.proc.pid}: "
            f"blob :{azurite.blob_port}, table :{azurite.table_port}",
            flush=True,
        )
        print(f"Starting the Service Bus broker (data in {data / 'servicebus'}) ...", flush=True)
        broker = start_broker(
            data / "servicebus",
            servicebus_config,
            None if free_ports else DEV_BUS_PORT,
            log=data / "servicebus.log",
            admin_port=0 if free_ports else DEV_BUS_ADMIN_PORT,
            preexec_fn=die_with_parent(),
        )
        stack.append(broker)
        print(
            f"  broker  pid {broker.pid}: amqp :{broker.port}, admin http :{broker.admin_port}",
            flush=True,
        )
        print("Starting a Ray head ...", flush=True)
        # Ray's socket paths must stay short: keep its session outside the project tree.
        ray_dir = Path(tempfile.mkdtemp(prefix="statsaga-ray-"))
        head = start_ray_head(ray_dir, num_cpus=settings.ray_num_cpus, log=data / "ray.log")
        stack.append(head)
        print(f"  ray     pid {head.proc.pid}: {head.address}, actor logs in", flush=True)
        print(f"          {ray_dir / 'session_latest' / 'logs'}/worker-*.err", flush=True)
        print(f"Ray head ready. Join it with: {' '.join(f'{k}={v}' for k, v in head.env.items())}")
        # For `statsaga pools` run in another terminal: how to join this head.
        ray_env = data / "ray.env"
        ray_env.write_text("".join(f"{k}={v}\n" for k, v in head.env.items()))
        stack.append(_Removed(ray_env))
        env = {
            **os.environ,
            "STATSAGA_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "STATSAGA_SERVICEBUS_CONNECTION_STRING": broker.connection_string,
            "STATSAGA_SERVICEBUS_ADMIN_CONNECTION_STRING": broker.admin_connection_string,
            "STATSAGA_API_KEYS": ",".join(f"{k}:{r.value}" for k, r in settings.api_keys.items()),
            **head.env,
        }
        roles = [Role(n, env, data / f"{n}.log") for n in ("worker", "api")]
        print("Starting statsaga (ctrl-C stops everything):", flush=True)
        for role in roles:
            role.start()
        url = f"http://{settings.host}:{settings.port}"
        print(f"API on {url}", flush=True)
        print(f"Pages: {url}/ops (operator console, admin key), {url}/players/ID", flush=True)
        print(f"Metrics: {url}/metrics (api)", flush=True)
        if settings.metrics_port:
            print(
                f"         http://{settings.host}:{settings.metrics_port}/metrics (worker)",
                flush=True,
            )
        while stopped_by is None:
            time.sleep(0.5)
            for role in roles:
                if role.proc is not None and role.proc.poll() is not None and stopped_by is None:
                    code = role.proc.returncode
                    print(f"{role.name} exited ({code}); restarting it", flush=True)
                    time.sleep(restart_after_s)
                    role.start()
        return _exit_code(stopped_by)
    except KeyboardInterrupt:
        return _exit_code(stopped_by)
    finally:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        print("Stopping ...", flush=True)
        for role in reversed(roles):
            role.stop()
        for part in reversed(stack):
            part.stop()
        if ray_dir is not None:
            shutil.rmtree(ray_dir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("Stopped.", flush=True)
