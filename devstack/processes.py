"""Local dependencies as child processes, started on loopback ports and stopped by PID:
Azurite from the project's node_modules, a statsaga role (a Ray cluster:
``devstack.ray_cluster``). Used by ``statsaga dev`` (devstack/supervisor.py), the test
fixtures and the benchmarks."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from app.dev_endpoints import connection_string
from app.runtime.lifeline import die_with_parent
from sbemu.launcher import port_is_free

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AZURITE_MAIN = PROJECT_ROOT / "node_modules" / "azurite" / "dist" / "src" / "azurite.js"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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
    args = [node, str(AZURITE_MAIN), *_azurite_options(location, blob_port, table_port, in_memory)]
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


def _azurite_options(location: Path, blob_port: int, table_port: int, in_memory: bool) -> list[str]:
    return [
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


def spawn_role(role: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``statsaga <role>`` as a child in its own session, output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.entrypoints.cli", role],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # SIGTERM: the role's own graceful stop, as `statsaga dev`'s Ctrl-C does.
            preexec_fn=die_with_parent(),
        )
