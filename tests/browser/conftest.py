"""The web pages in a real browser: Debian's headless Chromium driven by Playwright's
async API on pytest-asyncio's session loop (Playwright's sync API would mark a loop as
running in the main thread and break every async test after it), against the session's
``clean_scenario``: a real api and worker over Azurite, the local broker and a Ray head
(shared with the chaos and scaling tests, so that CI starts no service of its own for
these)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from playwright.async_api import Browser, Locator, Page, ViewportSize, async_playwright

from devstack.processes import Azurite
from tests.e2e.conftest import KEYS, Scenario, start_scenario
from tests.support.matches import random_match
from tests.support.runs import wait_states

APT = (
    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
    "--no-install-recommends chromium fonts-liberation fonts-dejavu-core"
)
# The flags, and a resolver that knows only this machine: Chromium looks up
# Google's hosts even with background networking off, and a test must not reach out.
ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
__all__ = ["start_scenario"]  # a scenario with faults of its own (test_retries.py)
WIDE: ViewportSize = {"width": 1280, "height": 800}
NARROW: ViewportSize = {"width": 375, "height": 667}
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
Shoot = Callable[[Page, str], Awaitable[Path]]


def chromium_path() -> str:
    """``STATSAGA_CHROMIUM``, else Debian's binary (not its wrapper script, which only adds
    flags and noise), else whatever ``chromium`` is on the PATH; fails the test, loudly,
    when there is none (CI must not pass by skipping the browser tests)."""
    debian = Path("/usr/lib/chromium/chromium")
    found = os.environ.get("STATSAGA_CHROMIUM") or (
        str(debian) if debian.is_file() else shutil.which("chromium")
    )
    if found is None or not Path(found).is_file():
        pytest.fail(
            f"no Chromium at {found or debian}: install it with `{APT}` "
            "(or point STATSAGA_CHROMIUM at a Chromium binary)",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium for this package (see ``chromium_path``)."""
    path = chromium_path()
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=path, args=ARGS)
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
def base(clean_scenario: Scenario) -> str:
    """Where the pages are: the shared scenario's api process."""
    return clean_scenario.api.base_url


async def _page(browser: Browser, viewport: ViewportSize) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    crashes: list[str] = []
    page.on("pageerror", lambda error: crashes.append(str(error)))
    try:
        yield page
    finally:
        await context.close()
    # A script that throws leaves a half-drawn page: that is a failure of its own.
    assert crashes == [], f"uncaught errors in the page: {crashes}"


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh context (no cookies, no session storage) and page, 1280 wide."""
    async for p in _page(browser, WIDE):
        yield p


@pytest.fixture
async def narrow_page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh context and page the size of a small phone (375 x 667)."""
    async for p in _page(browser, NARROW):
        yield p


async def with_key(page: Page, role: str) -> None:
    """Put ``role``'s key in the page's session storage before any script runs, as the key
    form would after a first 401."""
    await page.add_init_script(
        f"sessionStorage.setItem('statsaga.apiKey', {json.dumps(KEYS[role])})"
    )


def stat(page: Page, key: str) -> Locator:
    """The value of a page's fact (``<dd data-stat=key>``)."""
    return page.locator(f'dd[data-stat="{key}"]')


def whole(text: str) -> re.Pattern[str]:
    """An element's whole text: a plain ``has_text`` matches substrings, so player ``p-x-1``
    would also find ``p-x-15`` (and strict mode then refuses two elements)."""
    return re.compile(rf"^\s*{re.escape(text)}\s*$")


def row(page: Page, table: str, key: str, column: int = 1) -> Locator:
    """The row of table ``#table`` whose ``column``-th cell (1: the row header) is ``key``."""
    cell = page.locator(f"th:nth-child({column}), td:nth-child({column})", has_text=whole(key))
    return page.locator(f"#{table} tbody tr").filter(has=cell)


def steps_about(page: Page, player_id: str, sentence: str = "") -> Locator:
    """The match timeline's steps about ``player_id`` (their sentence starts ``ID: ``) that
    go on with ``sentence``."""
    what = re.compile(rf"^\s*{re.escape(player_id)}: {re.escape(sentence)}")
    return page.locator("#timeline-list > li").filter(has=page.locator(".what", has_text=what))


async def assert_fits_the_screen(page: Page, where: str) -> None:
    """The page does not scroll sideways: wide tables scroll inside their own region."""
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"{where}: page wider than the screen: {widths}"


def make_stuck(scenario: Scenario, azurite: Azurite) -> tuple[str, str]:
    """A match whose saga is stuck: one player's record row is corrupt, so every update of
    it fails for good and is dead-lettered. Returns (match id, that player)."""
    run = uuid.uuid4().hex[:6]
    victim = f"p-{run}-victim"
    match = random_match(random.Random(9), f"m-{run}-stuck", [victim, f"p-{run}-ok"], size=2)
    with TableServiceClient.from_connection_string(azurite.connection_string) as tables:
        table = tables.get_table_client(f"{scenario.prefix}players")
        table.upsert_entity({"PartitionKey": victim, "RowKey": "record", "data": "{corrupt"})
    assert scenario.client.post_match(match).status_code == 202
    mid = match["match_id"]
    assert wait_states(scenario.client, {mid: "stuck"}, 90) == {mid: "stuck"}
    return mid, victim


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``STATSAGA_SCREENSHOTS`` (``make screenshots`` sets it to
    docs/screenshots), else a temp dir."""
    target = os.environ.get("STATSAGA_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def shoot(screenshots: Path) -> Shoot:
    """``await shoot(page, name)``: a full-page PNG of the page as it is now."""

    async def take(page: Page, name: str) -> Path:
        path = screenshots / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True, animations="disabled")
        return path

    return take


async def axe_problems(page: Page) -> list[str]:
    """axe-core's serious and critical WCAG 2.1 A/AA violations on the page as it is now.
    Injected by evaluation, not a script tag: the pages' CSP allows no inline script."""
    await page.evaluate(AXE.read_text())
    result = await page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@dataclass(frozen=True)
class Played:
    """A player's matches as posted, newest first, all completed."""

    player: str
    matches: list[dict[str, Any]]

    @property
    def ids(self) -> list[str]:
        return [m["match_id"] for m in self.matches]


@pytest.fixture(scope="package")
def played(clean_scenario: Scenario) -> Played:
    """Seven matches of four players each, all with one player, an hour apart."""
    run = uuid.uuid4().hex[:6]
    rng = random.Random(20261123)
    player, others = f"p-{run}-star", [f"p-{run}-{i}" for i in range(6)]
    now = datetime.now(UTC).replace(microsecond=0)
    matches = [
        random_match(
            rng,
            f"m-{run}-{i}",
            [player, *rng.sample(others, 3)],
            size=4,
            ended_at=now - timedelta(hours=i + 1),
        )
        for i in range(7)
    ]
    client = clean_scenario.client
    for match in matches:
        assert client.post_match(match).status_code == 202
    ids = [m["match_id"] for m in matches]
    assert client.wait_finished(ids, 90) == dict.fromkeys(ids, "completed")
    return Played(player, matches)
