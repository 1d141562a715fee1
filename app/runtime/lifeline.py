"""Child processes that stop when their parent dies, however it dies: a ``preexec_fn``
that asks the Linux kernel to signal the child when its parent goes (``PR_SET_PDEATHSIG``).
A SIGKILLed test run or ``statsaga dev`` runs no clean-up code of its own; the kernel
still signals its children. See docs/architecture.md ("Nothing outlives its parent")."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1

_prctl: Any = None


def _load_prctl() -> Any:
    """libc's ``prctl``, looked up in the parent: the child, between fork and exec, should
    do as little as it can."""
    global _prctl
    if _prctl is None:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        prctl.restype = ctypes.c_int
        prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
        _prctl = prctl
    return _prctl


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets ``sig`` when the thread
    that starts it exits (the kernel tracks the forking *thread*, so start long-lived
    children from the main thread). None off Linux, where nothing is arranged.

    The setting survives ``exec`` but is not inherited by the child's own children:
    each process that must go needs its own (Ray's ``ray start --block`` sets it on its
    GCS and raylet)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = _load_prctl()
    parent = os.getpid()

    def arrange() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        # The parent may have died before the line above: then nobody would signal us.
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return arrange


def follow_parent(sig: signal.Signals = signal.SIGTERM) -> None:
    """Have the kernel send this process ``sig`` when its parent dies: for a process
    started by another that may be killed outright (``make run``'s ``statsaga dev``, whose
    SIGTERM handler then stops everything it started). Nothing off Linux."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    _load_prctl()(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above
        os.kill(os.getpid(), sig)
