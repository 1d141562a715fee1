"""Processes as /proc shows them, for the tests that check nothing outlives its parent
(no psutil: it is not a dependency)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    """One process, told apart from a later one that reuses its PID by its start time."""

    pid: int
    ppid: int
    started: int
    name: str

    def alive(self) -> bool:
        """Still running: the same process (a zombie waiting to be reaped does not count)."""
        now = read_proc(self.pid)
        return now is not None and now.started == self.started and now.name != "<zombie>"


def read_proc(pid: int) -> Proc | None:
    """What /proc says of ``pid`` now, None if nothing runs under it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return None
    # The command in parentheses may hold spaces and parentheses: split after the last.
    fields = stat.rsplit(")", 1)[1].split()
    state, ppid, started = fields[0], int(fields[1]), int(fields[19])
    name = "<zombie>" if state == "Z" else os.path.basename(argv0.decode(errors="replace"))
    return Proc(pid, ppid, started, name or stat.split("(", 1)[1].rsplit(")", 1)[0])


def descendants(root: int) -> list[Proc]:
    """Every live process under ``root`` (children, their children ...), not ``root``."""
    procs = [p for p in map(read_proc, _pids()) if p is not None]
    children: dict[int, list[Proc]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    found: list[Proc] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def _pids() -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]


def wait_gone(procs: list[Proc], timeout_s: float) -> list[Proc]:
    """Wait until none of ``procs`` runs; those still running after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    left = [p for p in procs if p.alive()]
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [p for p in left if p.alive()]
    return left


def kill_left(procs: list[Proc]) -> None:
    """SIGKILL, by PID, those of ``procs`` still running (a failed test's clean-up)."""
    for p in procs:
        if p.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
