"""Sampling profiles of the running service with py-spy (``statsaga bench --profile``):
the api, the worker and the Ray actor processes are sampled while the sustained phase
runs, and each kind's hottest functions are listed (self time and inclusive time)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench.cpu import descendants

PROFILED = ("statsaga api", "statsaga worker", "GameActor actors", "PlayerShard actors")


def py_spy() -> str:
    """The py-spy executable next to this Python (a dev dependency)."""
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: `pip install -e .[dev]` (make deps)")
    return found


@contextlib.contextmanager
def sampling(out: Path, seconds: float) -> Iterator[None]:
    """Sample every profiled process for ``seconds`` (collapsed stacks in ``out``, whose
    stacks from an earlier run are removed first: ``hottest`` reads every file there, and
    mixed runs once blamed a function that no longer existed)."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.txt"):
        stale.unlink()
    procs: list[subprocess.Popen[bytes]] = []
    for pid, kind in descendants(os.getpid()).items():
        if kind in PROFILED:
            name = f"{kind.replace(' ', '_')}-{pid}.txt"
            args = [py_spy(), "record", "--pid", str(pid), "--duration", str(int(seconds))]
            args += [
                "--rate",
                "100",
                "--gil",
                "--format",
                "raw",
                "--nonblocking",
                "-o",
                str(out / name),
            ]
            procs.append(
                subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
    try:
        yield
    finally:
        for proc in procs:
            try:
                proc.wait(seconds + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _frame(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py)``: lines of one function merge."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.rsplit(':', 1)[0]).name})" if where else name


def hottest(out: Path, top: int = 15) -> dict[str, dict[str, list[tuple[str, float]]]]:
    """Per kind: the ``top`` functions by self and by inclusive share of the samples (idle
    samples are left out, so the shares are of the time the process was busy)."""
    result: dict[str, dict[str, list[tuple[str, float]]]] = {}
    for kind in {p.name.rsplit("-", 1)[0] for p in out.glob("*.txt")}:
        own: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        samples = 0
        for path in out.glob(f"{kind}-*.txt"):
            for line in path.read_text(errors="replace").splitlines():
                stack, _, count = line.rpartition(" ")
                if not stack or not count.isdigit():
                    continue
                frames = [_frame(f) for f in stack.split(";")[1:]]  # [0] is the thread
                if not frames:
                    continue
                n = int(count)
                samples += n
                own[frames[-1]] += n
                for f in set(frames):
                    inclusive[f] += n
        if samples:
            result[kind] = {
                "self": [(f, round(n / samples, 3)) for f, n in own.most_common(top)],
                "inclusive": [(f, round(n / samples, 3)) for f, n in inclusive.most_common(top)],
            }
    return result
