"""Shared fixtures: one real Azurite for the whole session, unique names per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.devstack import Azurite, start_azurite


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A real Azurite (Blob + Table) on free ports, data in a temp dir, stopped by PID."""
    location: Path = tmp_path_factory.mktemp("azurite")
    instance = start_azurite(location, log=location / "azurite.log")
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for ids and table names, so tests never share state."""
    return uuid.uuid4().hex[:10]
