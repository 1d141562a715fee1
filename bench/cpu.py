"""Where the machine's CPU goes during a phase: CPU seconds of every process the benchmark
started (its descendants, read from /proc), grouped by what the process is."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
# What a command line says about the process, first match wins.
KINDS = (
    ("azurite.js", "azurite (node)"),
    ("sbemu", "service bus broker"),
    ("app.entrypoints.cli worker", "statsaga worker"),
    ("app.entrypoints.cli api", "statsaga api"),
    ("ray::GameActor", "GameActor actors"),
    ("ray::PlayerShard", "PlayerShard actors"),
    ("ray::PoolDirectory", "pool directory actor"),
    ("ray::BoardActor", "BoardActor actors"),
    ("raylet", "ray raylet + gcs + agents"),
    ("gcs_server", "ray raylet + gcs + agents"),
    ("ray", "ray raylet + gcs + agents"),
)


def _stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process, or None if it is gone."""
    try:
        fields = (Path("/proc") / pid / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def _kind(pid: str) -> str:
    try:
        cmd = (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "other"
    return next((kind for needle, kind in KINDS if needle in cmd), "other")


def _tree(root: int) -> dict[str, float]:
    """CPU seconds of ``root`` and each of its descendants, by pid."""
    stats = {pid: s for pid in os.listdir("/proc") if pid.isdigit() and (s := _stat(pid))}
    children: dict[int, list[str]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[str, float] = {}
    todo = [str(root)]
    while todo:
        pid = todo.pop()
        if pid in stats:
            found[pid] = stats[pid][1]
            todo.extend(children.get(int(pid), []))
    return found


def descendants(root: int) -> dict[int, str]:
    """The kind of each process under ``root`` (not ``root`` itself)."""
    return {int(pid): _kind(pid) for pid in _tree(root) if int(pid) != root}


def cpu_by_kind(root: int | None = None) -> dict[str, float]:
    """CPU seconds so far of ``root`` (default: this process) and its descendants, by
    kind; this process itself is ``benchmark client``."""
    root = root or os.getpid()
    totals: defaultdict[str, float] = defaultdict(float)
    for pid, seconds in _tree(root).items():
        totals["benchmark client" if int(pid) == root else _kind(pid)] += seconds
    return totals


def share(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores used by each kind between two readings (1.0 = one core busy), busiest
    first; processes that ended in between are not counted."""
    used = {k: (v - before.get(k, 0.0)) / seconds for k, v in after.items()}
    return {k: round(v, 2) for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v > 0.005}
