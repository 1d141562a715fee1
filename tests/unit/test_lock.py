"""The lock files install exactly what pyproject.toml pins, each file checked by hash."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = PROJECT["dependencies"]
DEV = PROJECT["optional-dependencies"]["dev"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: str) -> dict[str, tuple[str, int]]:
    """Each locked package: its version and how many file hashes it lists."""
    entries: dict[str, tuple[str, int]] = {}
    # One entry: `name==version \` then its `--hash=sha256:...` lines.
    for block in re.split(r"\n(?=\S)", (ROOT / lock).read_text()):
        head = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", block)
        if head:
            entries[canonical(head[1])] = (head[2], block.count("--hash=sha256:"))
    return entries


def pins(requirements: list[str]) -> dict[str, str]:
    return {
        canonical(name): version
        # All pinned exactly; an environment marker (`; sys_platform != 'win32'`) aside.
        for name, version in (r.partition(";")[0].strip().split("==") for r in requirements)
    }


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [("requirements.lock", RUNTIME), ("requirements-dev.lock", RUNTIME + DEV)],
)
def test_every_pin_is_locked_at_its_version_with_hashes(lock: str, requirements: list[str]) -> None:
    entries = locked(lock)
    for name, version in pins(requirements).items():
        assert name in entries, f"{name} is not in {lock}: run `make lock`"
        assert entries[name][0] == version, f"{lock} has {name} {entries[name][0]}: `make lock`"
    assert all(hashes for _, hashes in entries.values()), f"{lock} has an entry without hash"


def test_the_image_installs_no_dev_tool() -> None:
    runtime = locked("requirements.lock")
    # (pyyaml is a dev pin and also one of Ray's own dependencies.)
    for name in ("pytest", "hypothesis", "schemathesis", "ruff", "mypy", "playwright"):
        assert name not in runtime
