"""An actor's clients are built on its first call, once, however many calls come first."""

from __future__ import annotations

import asyncio

import pytest

from actors.once import BuiltOnce


async def test_concurrent_first_calls_share_one_build() -> None:
    builds = 0
    release = asyncio.Event()

    async def build() -> object:
        nonlocal builds
        builds += 1
        await release.wait()  # the first build is still under way when the others ask
        return object()

    once = BuiltOnce(build)
    assert once.value is None
    waiting = [asyncio.create_task(once.get()) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    values = await asyncio.gather(*waiting)
    assert builds == 1
    assert all(v is values[0] for v in values)
    assert once.value is values[0]
    assert await once.get() is values[0]


async def test_a_failed_build_is_tried_again_by_the_next_call() -> None:
    attempts = 0

    async def build() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("storage not up yet")
        return "clients"

    once = BuiltOnce(build)
    with pytest.raises(ConnectionError):
        await once.get()
    assert once.value is None
    assert await once.get() == "clients"
