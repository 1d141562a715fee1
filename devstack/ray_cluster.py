"""A local Ray cluster as child processes: a head (``ray start --head --block``) and more
nodes, with token authentication, stopped by PID. Used by ``statsaga dev``, the test
fixtures and the benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from app.runtime.lifeline import die_with_parent
from devstack.processes import free_port, stop_process


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
        _stop_ray_session(self.proc)


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
        _stop_ray_session(proc)
        raise
    return proc


def _stop_ray_session(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``ray start --block`` by PID, then whatever is left of its session: it was
    started in a session of its own, so its process group is ours alone."""
    stop_process(proc, grace_s=15.0)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


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
        _stop_ray_session(self.proc)


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
