"""The web pages' plumbing on the API app over in-memory adapters: the HTML shells, the
id rule, the security headers, the static files and their imports, the schema, the wheel.
(What the pages show is tested in a real browser: tests/browser.)"""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from fnmatch import fnmatch
from pathlib import Path

import httpx
import pytest

from actors.grains import GrainSettings, PlayerGrainHost
from app.application.operations import Operations
from app.application.services import StatsService
from app.entrypoints.api import create_app
from app.entrypoints.api.web import WEB
from app.settings import Settings
from storage.memory import InMemoryPayloadArchive, InMemoryPlayerStore, InMemorySagaLog
from storage.memory_bus import InMemoryMessageBus

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    store, sagas = InMemoryPlayerStore(), InMemorySagaLog()
    archive, bus = InMemoryPayloadArchive(), InMemoryMessageBus()
    service = StatsService(sagas, archive, store, PlayerGrainHost(store, GrainSettings()), bus)
    app = create_app(Settings(api_keys="read-key-0123456789:read"), service, Operations(sagas, bus))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://statsaga") as client:
        yield client


@pytest.mark.parametrize(
    ("path", "script"),
    [
        ("/players/p-1", "/static/player.js"),
        ("/matches/m-8f3a.2", "/static/match.js"),
        ("/leaderboards/slayer", "/static/leaderboard.js"),
        ("/ops", "/static/ops.js"),
    ],
)
async def test_a_page_is_its_shell_without_a_key(
    http: httpx.AsyncClient, path: str, script: str
) -> None:
    response = await http.get(path)  # no Authorization: the API behind it checks keys
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert f'<script type="module" src="{script}">' in response.text
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "{" not in response.text  # every placeholder filled


@pytest.mark.parametrize(
    "path",
    [
        "/players/-p",
        "/players/p%20q",
        "/matches/" + "m" * 65,
        "/matches/m%3Cscript%3E",
        "/leaderboards/_other",
    ],
)
async def test_an_id_breaking_the_rule_is_a_404_page(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in response.text and "<script" not in response.text
    assert "content-security-policy" in response.headers


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("app.css", "text/css"),
        ("api.js", "javascript"),
        ("player.js", "javascript"),
        ("match.js", "javascript"),
        ("ops.js", "javascript"),
        ("chart.js", "javascript"),
        ("rating.js", "javascript"),
        ("skills.js", "javascript"),
        ("leaderboard.js", "javascript"),
    ],
)
async def test_static_files_are_served_with_their_type(
    http: httpx.AsyncClient, name: str, kind: str
) -> None:
    response = await http.get(f"/static/{name}")
    assert response.status_code == 200
    assert kind in response.headers["content-type"]
    assert response.content == (WEB / "static" / name).read_bytes()


async def test_every_module_a_page_imports_is_served(http: httpx.AsyncClient) -> None:
    imports = set()
    for script in (WEB / "static").glob("*.js"):
        imports |= set(re.findall(r'from "\./([\w.-]+)"', script.read_text()))
    assert imports, "the pages share a module"
    for name in imports:
        assert (await http.get(f"/static/{name}")).status_code == 200, name
    assert (await http.get("/static/nope.js")).status_code == 404


async def test_the_pages_stay_out_of_the_openapi_schema(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert "/v1/players/{player_id}/stats" in paths
    assert not [p for p in paths if not p.startswith(("/v1/", "/healthz", "/readyz", "/metrics"))]


def test_the_wheel_carries_every_page_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["app.entrypoints.web"]
    files = [p.relative_to(WEB).as_posix() for p in WEB.rglob("*") if p.is_file()]
    files = [f for f in files if not f.endswith((".py", ".pyc"))]
    assert files
    assert [f for f in files if not any(fnmatch(f, pat) for pat in patterns)] == []
