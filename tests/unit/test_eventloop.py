"""The long-running roles run on uvloop when it is installed, and on asyncio's own loop
when it is not (Windows)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from app.entrypoints import cli_serving
from app.runtime.eventloop import loop_name, run
from app.settings import Settings


async def _which() -> str:
    return loop_name()


def test_the_roles_serve_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    async def serve(settings: Settings, **roles: Any) -> None:
        seen.append((loop_name(), roles))

    monkeypatch.setattr(cli_serving, "serve", serve)
    settings = Settings(api_keys="an-ingest-key-of-length:ingest", ray_address="127.0.0.1:1")
    assert (
        cli_serving.cmd_worker(settings)
        == cli_serving.cmd_api(settings)
        == cli_serving.cmd_run(settings)
        == 0
    )
    assert seen == [
        ("uvloop", {"api": False}),
        ("uvloop", {"worker": False}),
        ("uvloop", {}),
    ]


def test_without_uvloop_the_standard_loop_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    assert run(_which()) == "asyncio"


def test_outside_a_loop_there_is_none() -> None:
    assert loop_name() == "none"
