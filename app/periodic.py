"""A background loop for the sweepers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

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
