"""Nothing outlives its parent: a test run or ``statsaga dev`` killed by SIGTERM (a CI time
limit, ``timeout``) or SIGKILL leaves none of the processes it started running: Azurite,
brokers, the Ray head with its GCS, raylet and actors, the api and worker roles."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from devstack.processes import PROJECT_ROOT, free_port
from tests.e2e.held_session import HELD_PIDS
from tests.support.procs import Proc, descendants, kill_left, wait_gone

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.ray, pytest.mark.timeout(600)]

SIGNALS = pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)


def _env() -> dict[str, str]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    return env


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        # A session of its own, so that the signal goes to it alone (by PID).
        return subprocess.Popen(
            args,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture
def started() -> Iterator[list[Proc]]:
    """The processes a test expects to go; SIGKILLed by PID after it, should any remain."""
    procs: list[Proc] = []
    yield procs
    kill_left(procs)


def _wait_for(
    what: str, done: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 240
    while not done():
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:]
            raise AssertionError(f"no {what} (exit {proc.returncode}):\n{tail}")
        time.sleep(0.5)


def _check_tree(tree: list[Proc]) -> None:
    """What was started is there to be killed: else the test would prove nothing."""
    names = {p.name for p in tree}
    assert {"node", "gcs_server", "raylet"} <= names, names
    assert any(n.startswith("ray::") for n in names), f"no Ray worker process in {names}"


def _left(procs: list[Proc], timeout_s: float) -> list[str]:
    return [f"{p.pid} {p.name}" for p in wait_gone(procs, timeout_s)]


@SIGNALS
def test_a_killed_test_run_leaves_no_process(
    sig: signal.Signals, tmp_path: Path, started: list[Proc]
) -> None:
    pids_file = tmp_path / "pids.json"
    log = tmp_path / "pytest.log"
    run = _spawn(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/e2e/held_session.py",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'held'}",
        ],
        {**_env(), HELD_PIDS: str(pids_file)},
        log,
    )
    try:
        _wait_for("PIDs from the held session", pids_file.exists, run, log)
        tree = descendants(run.pid)
        started.extend(tree)
        held = json.loads(pids_file.read_text())
        assert set(held.values()) <= {p.pid for p in tree}, (held, tree)
        _check_tree(tree)

        run.send_signal(sig)
        # SIGTERM: pytest ends the run as on Ctrl-C, the fixtures' teardown stopping
        # each process gracefully (seconds each); SIGKILL: the kernel signals them.
        code = run.wait(120)
        if sig == signal.SIGTERM:
            assert code == 128 + signal.SIGTERM, log.read_text(errors="replace")[-4000:]
        assert _left(tree, 20) == []
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)


@SIGNALS
@pytest.mark.parametrize("via", ["statsaga dev", "make run"])
def test_a_killed_dev_stack_leaves_no_process(
    sig: signal.Signals, via: str, tmp_path: Path, started: list[Proc]
) -> None:
    port = free_port()
    log = tmp_path / "dev.log"
    env = {
        **_env(),
        "STATSAGA_DATA_DIR": str(tmp_path / "data"),
        "STATSAGA_PORT": str(port),
        "STATSAGA_METRICS_PORT": "0",
        "STATSAGA_RAY_NUM_CPUS": "2",
    }
    if via == "make run":  # what a user starts: killing make must stop the stack too
        command = ["make", "--no-print-directory", "run", "DEV_FLAGS=--free-ports"]
    else:
        command = [sys.executable, "-m", "app.entrypoints.cli", "dev", "--free-ports"]
    dev = _spawn(command, env, log)
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        # Ready: the worker has created its pools, so actors run on the Ray head.
        _wait_for("ready api", ready, dev, log)
        tree = descendants(dev.pid)
        started.extend(tree)
        _check_tree(tree)
        assert sum(p.name.startswith("python") for p in tree) >= 3, tree  # broker, api, worker

        dev.send_signal(sig)
        if sig == signal.SIGTERM:
            code = dev.wait(120)
            if via == "statsaga dev":  # make passes the signal on, then dies of it
                assert code == 128 + signal.SIGTERM
            assert "Stopped." in log.read_text()
        assert _left(tree, 30) == []
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait(10)
