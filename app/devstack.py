"""Local dependencies as child processes: Azurite from the project's node_modules, started
on free loopback ports and stopped by PID. Used by ``statsaga dev`` and the test fixtures."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AZURITE_MAIN = PROJECT_ROOT / "node_modules" / "azurite" / "dist" / "src" / "azurite.js"
# Azurite's well-known development account (public, documented by Microsoft).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:``port``."""
    with socket.socket() as s:
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
) -> Azurite:
    """Start Azurite (Blob + Table; Queue on a throwaway port) with data in ``location``."""
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
        "--location",
        str(location),
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
