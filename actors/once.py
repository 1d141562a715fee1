"""What an actor builds on its first call, once: its storage clients and what uses them
bind to the actor's event loop, which exists only once a method runs (not in
``__init__``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BuiltOnce(Generic[T]):
    """``build()`` awaited by the first ``get``; concurrent first calls wait for that one
    build instead of starting their own."""

    def __init__(self, build: Callable[[], Awaitable[T]]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def value(self) -> T | None:
        """The value if built, else ``None`` (for stats that must not build it)."""
        return self._value

    async def get(self) -> T:
        """The value, built on the first call."""
        if self._value is None:
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:
                if self._value is None:
                    self._value = await self._build()
        return self._value
