"""A background loop for the sweepers, and the ``run``/``stop`` they share."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import ClassVar

log = logging.getLogger(__name__)


async def every(
    interval_s: float, stopping: asyncio.Event, work: Callable[[], Awaitable[object]], name: str
) -> None:
    """Run ``work`` every ``interval_s`` until ``stopping`` is set; a failed pass is logged
    and tried again next time."""
    while not stopping.is_set():
        try:
            await work()
        except Exception:
            log.exception("%s failed; next try in %.0fs", name, interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval_s)


class Sweeper:
    """``sweep`` every ``interval_s`` until ``stop``; a failed pass is logged and tried
    again next time. Subclasses (dataclasses) give ``interval_s``, ``sweep`` and a name."""

    interval_s: float
    name: ClassVar[str] = "sweep"

    async def sweep(self) -> int:
        """One pass; how many things it did."""
        raise NotImplementedError

    @functools.cached_property
    def _stopping(self) -> asyncio.Event:
        return asyncio.Event()

    async def run(self) -> None:
        """Sweep until ``stop``."""
        await every(self.interval_s, self._stopping, self.sweep, self.name)

    def stop(self) -> None:
        """Ask ``run`` to return."""
        self._stopping.set()
