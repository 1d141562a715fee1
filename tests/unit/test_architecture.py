"""The domain is the pure core: it imports only the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "app" / "domain"
MODULES = sorted(DOMAIN.rglob("*.py"))


def foreign_imports(source: str, package: str = "app.domain") -> list[str]:
    """Modules ``source`` imports that are neither standard library nor under ``package``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: stays inside the package unless it climbs out
                if node.level > 1:
                    found.append("." * node.level + (node.module or ""))
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            inside = name == package or name.startswith(package + ".")
            if not inside and name.split(".")[0] not in sys.stdlib_module_names:
                found.append(name)
    return found


def test_the_domain_has_modules() -> None:
    assert {p.stem for p in MODULES} >= {"validation", "aggregation", "stats", "saga", "retry"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_domain_module_imports_only_stdlib_and_domain(path: Path) -> None:
    assert foreign_imports(path.read_text()) == []


@pytest.mark.parametrize(
    ("source", "foreign"),
    [
        ("import ray", ["ray"]),
        ("from fastapi import FastAPI", ["fastapi"]),
        ("import app.services", ["app.services"]),
        ("from app import ports", ["app"]),
        ("from storage.memory import X", ["storage.memory"]),
        ("from .. import services", [".."]),
        ("def f():\n    import azure.data.tables", ["azure.data.tables"]),
        ("import json, hashlib\nfrom collections.abc import Mapping", []),
        ("from __future__ import annotations\nfrom app.domain.model import Match", []),
        ("from . import model", []),
    ],
)
def test_the_checker_tells_foreign_imports(source: str, foreign: list[str]) -> None:
    assert foreign_imports(source) == foreign
