"""Start the broker as a child process (as ``statsaga dev`` and the tests do), on a free or
given loopback port, and stop it by its PID."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sbemu.depths import QueueDepth, queue_depths

__all__ = [
    "LocalBroker",
    "QueueDepth",
    "connection_string",
    "port_is_free",
    "queue_depths",
    "start_broker",
]


def connection_string(port: int, host: str = "127.0.0.1") -> str:
    """What the SDK needs: ``UseDevelopmentEmulator=true`` turns TLS off, keeps the port."""
    return (
        f"Endpoint=sb://{host}:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=local;UseDevelopmentEmulator=true"
    )


@dataclass
class LocalBroker:
    """A running broker process."""

    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    config: Path
    log: Path | None
    admin_port: int | None = None
    preexec_fn: Callable[[], None] | None = None

    @property
    def pid(self) -> int:
        """The broker's process id."""
        return self.proc.pid

    @property
    def connection_string(self) -> str:
        """Service Bus connection string for this broker."""
        return connection_string(self.port)

    @property
    def admin_connection_string(self) -> str:
        """Connection string for the SDK's ``ServiceBusAdministrationClient``: the same
        namespace on the administration API's port (as Microsoft's emulator has it)."""
        if self.admin_port is None:
            raise RuntimeError("this broker was started without an administration port")
        return connection_string(self.admin_port)

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``, by PID."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL by PID: a crash, for durability tests."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, timeout_s: float = 20.0) -> LocalBroker:
        """Stop (if running) and start again on the same port and data dir; this handle
        then controls the new process (so fixtures holding it stop the right one)."""
        self.stop()
        again = start_broker(
            self.data_dir,
            self.config,
            self.port,
            self.log,
            timeout_s,
            admin_port=self.admin_port,
            preexec_fn=self.preexec_fn,
        )
        self.proc = again.proc
        return self


_LISTENING = re.compile(r"listening on \S+:(?P<port>\d+)(?: admin http://\S+:(?P<admin>\d+))?")


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:``port``. SO_REUSEADDR as servers bind with
    it, so that connections in TIME_WAIT from a server that just stopped do not count."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def start_broker(
    data_dir: Path,
    config: Path,
    port: int | None = None,
    log: Path | None = None,
    timeout_s: float = 20.0,
    *,
    admin_port: int | None = 0,
    preexec_fn: Callable[[], None] | None = None,
) -> LocalBroker:
    """Start ``python -m sbemu serve`` and wait until it listens. ``port`` None: a free one;
    ``admin_port`` (the administration API's HTTP port) 0: a free one, None: not served;
    ``preexec_fn`` runs in the child before it starts (statsaga's ties it to its parent's
    life: ``app.runtime.lifeline``); a restart reuses it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for wanted in (port, admin_port):
        if wanted and not port_is_free(wanted):
            # Otherwise the wait below would find the other server and take it for ours.
            raise RuntimeError(f"port {wanted} is taken: stop what uses it, or pick another port")
    args = ["--config", str(config), "--data-dir", str(data_dir), "--port", str(port or 0)]
    args += ["--admin-port", str(admin_port)] if admin_port is not None else []
    err = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    try:
        proc = _spawn(args, err, preexec_fn)
    finally:
        if not isinstance(err, int):
            err.close()
    try:
        bound, bound_admin = _wait_listening(proc, timeout_s, log)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(5)
        raise
    return LocalBroker(proc, bound, data_dir, config, log, bound_admin, preexec_fn)


def _spawn(
    args: list[str], err: Any, preexec_fn: Callable[[], None] | None
) -> subprocess.Popen[bytes]:
    """``python -m sbemu serve ARGS``, this project importable, in a session of its own."""
    project = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "sbemu", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=err,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": path},
        preexec_fn=preexec_fn,
    )


def _wait_listening(
    proc: subprocess.Popen[bytes], timeout_s: float, log: Path | None
) -> tuple[int, int | None]:
    """The ports the broker says it listens on (AMQP, admin): it prints one line once it
    does, "sbemu listening on HOST:PORT[ admin http://HOST:ADMIN_PORT]"."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    line = b""
    while b"listening on" not in line:
        if proc.poll() is not None:
            raise RuntimeError(f"sbemu exited with {proc.returncode} during start (log: {log})")
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"sbemu not listening after {timeout_s}s (log: {log})")
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
        if ready:
            line = proc.stdout.readline()
    found = _LISTENING.search(line.decode())
    if found is None:
        raise RuntimeError(f"sbemu printed an unexpected first line: {line!r}")
    return int(found["port"]), int(found["admin"]) if found["admin"] else None
