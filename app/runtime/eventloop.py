"""The event loop of the long-running roles: uvloop where it is installed, else asyncio's.

uvloop runs the same asyncio code with its I/O and callbacks in C (libuv); nothing in
statsaga depends on which loop it gets. The ``api`` and ``worker`` roles run on it through
``run``. Ray's worker processes install it themselves when it is importable
(``ray._private.async_compat.try_install_uvloop``, unless ``RAY_USE_UVLOOP=0``), so the
GameActors and PlayerShards run on it too, with no code of ours. uvloop has no Windows
build: there the standard loop stays.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory; ``None`` (asyncio's own loop) when uvloop is not installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop when it is installed."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: the running loop's kind (logs, pool stats); ``none``
    outside a loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return "none"
    return "uvloop" if type(loop).__module__.partition(".")[0] == "uvloop" else "asyncio"
