"""The layers are folders, and each may import only what its rule in ``LAYERS`` allows
(docs/architecture.md, "Layers", has the table). Every module is checked, lazy imports
inside functions included; the domain uses the standard library (and openskill and
sortedcontainers, which only compute), and no web framework, Ray, Azure SDK or AMQP
library reaches the application layer."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("app", "actors", "storage", "sbemu", "devstack", "bench", "tests")
ADAPTER_LIBRARIES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "ray",
    "azure",
    "aiohttp",
    "httpx",
    "proton",
)


@dataclass(frozen=True)
class Layer:
    """Modules under ``prefix``: the first-party prefixes they may import, and the
    third-party packages they may not (``stdlib_only``: none at all but ``computes``,
    libraries that only compute)."""

    prefix: str
    may_import: tuple[str, ...]
    forbidden: tuple[str, ...] = ()
    stdlib_only: bool = False
    computes: tuple[str, ...] = ()


DOMAIN, APPLICATION, OBSERVABILITY = "app.domain", "app.application", "app.observability"
RUNTIME, SETTINGS = "app.runtime", ("app.settings", "app.dev_endpoints")
LAYERS = (
    # openskill: the rating arithmetic (app/domain/ratings.py); sortedcontainers: the
    # leaderboards' index (app/domain/leaderboards.py). Both pure computation.
    Layer(DOMAIN, (DOMAIN,), stdlib_only=True, computes=("openskill", "sortedcontainers")),
    Layer(RUNTIME, (RUNTIME,)),
    Layer(APPLICATION, (DOMAIN, APPLICATION, OBSERVABILITY), ADAPTER_LIBRARIES),
    Layer(OBSERVABILITY, (DOMAIN, APPLICATION, OBSERVABILITY), ADAPTER_LIBRARIES),
    Layer(
        "storage",
        (DOMAIN, f"{APPLICATION}.ports", f"{APPLICATION}.messages", "storage"),
        ("fastapi", "starlette", "uvicorn", "ray"),
    ),
    Layer(
        "actors",
        (DOMAIN, APPLICATION, OBSERVABILITY, RUNTIME, "storage", "actors"),
        ("fastapi", "starlette", "uvicorn"),
    ),
    *(Layer(s, (DOMAIN, OBSERVABILITY, *SETTINGS), ADAPTER_LIBRARIES) for s in SETTINGS),
    Layer(
        "app.bootstrap",
        ("app.domain", APPLICATION, OBSERVABILITY, RUNTIME, *SETTINGS, "actors", "storage"),
    ),
    *(
        Layer(
            f"app.entrypoints.{part}",
            (
                DOMAIN,
                APPLICATION,
                OBSERVABILITY,
                *SETTINGS,
                "app.entrypoints.api",
                "app.entrypoints.web",
            ),
            ("ray", "azure", "proton"),
        )
        for part in ("api", "web")
    ),
    Layer("app.entrypoints", ("app", "actors", "storage", "devstack", "bench")),
    Layer("sbemu", ("sbemu",)),
    Layer("devstack", ("devstack", "sbemu", RUNTIME, *SETTINGS)),
)


def layer_of(module: str) -> Layer:
    """The most specific layer ``module`` belongs to."""
    found = [layer for layer in LAYERS if _under(module, layer.prefix)]
    if not found:
        raise LookupError(f"{module} is in no layer: give its folder a rule")
    return max(found, key=lambda layer: len(layer.prefix))


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def imports(source: str, module: str) -> list[str]:
    """Every module ``source`` imports, relative imports resolved against ``module``."""
    found = []
    package = module.split(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level], *filter(None, [base])])
            found += [_imported(base, alias.name) for alias in node.names]
    return found


def _imported(base: str, name: str) -> str:
    """What ``from base import name`` imports: the module ``base.name`` when there is one
    (``from app import ports``), else ``base``."""
    candidate = f"{base}.{name}"
    return candidate if candidate in MODULES or base in FIRST_PARTY else base


def broken_rules(module: str, source: str) -> list[str]:
    """What ``module``'s imports break of its layer's rule (empty: none)."""
    layer = layer_of(module)
    broken = []
    for name in imports(source, module):
        root = name.split(".")[0]
        if root in FIRST_PARTY:
            if not _under(name, module) and not any(_under(name, p) for p in layer.may_import):
                broken.append(f"{module} imports {name} ({layer.prefix} may not)")
        elif root in sys.stdlib_module_names or root == "__future__":
            continue
        elif (layer.stdlib_only and root not in layer.computes) or root in layer.forbidden:
            broken.append(f"{module} imports {name} ({layer.prefix} may not use {root})")
    return broken


def _modules() -> dict[str, Path]:
    found = {}
    for top in ("app", "actors", "storage", "sbemu", "devstack"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "tests" in path.relative_to(ROOT).parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    found.pop("app")  # the top package holds no code: the layers are its folders
    return found


MODULES = _modules()


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.prefix)
def test_every_module_of_a_layer_imports_only_what_its_rule_allows(layer: Layer) -> None:
    mine = [m for m in MODULES if layer_of(m) is layer]
    assert mine, f"no module in {layer.prefix}: a rule for a folder that is gone"
    broken = [b for m in mine for b in broken_rules(m, MODULES[m].read_text())]
    assert broken == []


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_the_domain_has_its_modules() -> None:
    domain = {m.rsplit(".", 1)[-1] for m in MODULES if _under(m, DOMAIN)}
    assert domain >= {"validation", "aggregation", "stats", "saga", "retry"}


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        ("app.domain.x", "import ray", ["app.domain.x imports ray (app.domain may not use ray)"]),
        ("app.domain.x", "import json\nfrom app.domain.model import Match", []),
        ("app.domain.ratings", "from openskill.models import PlackettLuce", []),
        (
            "app.domain.x",
            "import numpy",
            ["app.domain.x imports numpy (app.domain may not use numpy)"],
        ),
        (
            "app.domain.x",
            "from app import ports",
            ["app.domain.x imports app.ports (app.domain may not)"],
        ),
        (
            "app.domain.x",
            "from .. import services",
            ["app.domain.x imports app.services (app.domain may not)"],
        ),
        (
            "app.domain.x",
            "def f():\n    import azure.data.tables",
            ["app.domain.x imports azure.data.tables (app.domain may not use azure)"],
        ),
        (
            "app.application.sagas",
            "from storage.tables import open_table_storage",
            ["app.application.sagas imports storage.tables (app.application may not)"],
        ),
        (
            "app.application.worker",
            "from fastapi import FastAPI",
            ["app.application.worker imports fastapi (app.application may not use fastapi)"],
        ),
        ("app.application.worker", "import tenacity\nfrom app.observability.logs import bind", []),
        (
            "storage.tables",
            "from actors.pools import GamePool",
            ["storage.tables imports actors.pools (storage may not)"],
        ),
        ("storage.tables", "from app.application.ports import SagaLog", []),
        (
            "storage.tables",
            "from app.application.sagas import SagaCoordinator",
            ["storage.tables imports app.application.sagas (storage may not)"],
        ),
        (
            "actors.game",
            "from app.entrypoints.api import create_app",
            ["actors.game imports app.entrypoints.api (actors may not)"],
        ),
        (
            "app.settings",
            "from devstack.processes import start_azurite",
            ["app.settings imports devstack.processes (app.settings may not)"],
        ),
        (
            "app.entrypoints.api.matches",
            "from storage.tables import TableStorage",
            ["app.entrypoints.api.matches imports storage.tables (app.entrypoints.api may not)"],
        ),
        ("app.entrypoints.cli_serving", "from devstack.supervisor import dev_stack", []),
        (
            "app.bootstrap",
            "from devstack.processes import free_port",
            ["app.bootstrap imports devstack.processes (app.bootstrap may not)"],
        ),
        (
            "sbemu.broker",
            "from app.runtime import lifeline",
            ["sbemu.broker imports app.runtime.lifeline (sbemu may not)"],
        ),
    ],
)
def test_the_checker_tells_a_broken_rule(module: str, source: str, broken: list[str]) -> None:
    assert broken_rules(module, source) == broken
