"""The leaderboard page in headless Chromium over the real stack: a mode's board by one
stat, paged from the top with the keyboard, the stats as links, rows linking to the
players, a phone-sized screen, axe-core. The expected rows are the API's own pages."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import (
    Played,
    Shoot,
    assert_fits_the_screen,
    axe_problems,
    with_key,
)
from tests.e2e.conftest import KEYS, Scenario
from tests.support.client import StatsClient

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
NAMES = {"rating": "Skill rating", "kills": "Kills", "wins": "Wins", "kd": "K/D"}


def board_page(
    client: StatsClient, mode: str, stat: str, limit: int, token: str | None = None
) -> dict[str, Any]:
    """One page of a board, from the API."""
    params: dict[str, Any] = {"stat": stat, "limit": limit}
    if token:
        params["continuation"] = token
    read = {"Authorization": f"Bearer {KEYS['read']}"}
    answer = client.http.get(f"/v1/leaderboards/{mode}", params=params, headers=read)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def settled(client: StatsClient, played: Played, mode: str) -> dict[str, Any]:
    """The whole kills board of ``mode`` once it holds the played player at their record's
    kills (boards follow the records within seconds)."""
    kills = client.stats(played.player).json()["modes"][mode]["kills"]
    deadline = time.monotonic() + 30
    while True:
        whole = board_page(client, mode, "kills", 100)
        mine = [e for e in whole["entries"] if e["player_id"] == played.player]
        if mine and mine[0]["value"] == kills:
            return whole
        assert time.monotonic() < deadline, f"{played.player} not on the {mode} board: {mine}"
        time.sleep(0.5)


def cells(entries: list[dict[str, Any]]) -> list[str]:
    """A page's rows as the table reads them: rank, player, value."""
    return [f"{e['rank']}\t{e['player_id']}\t{e['value']:,.0f}" for e in entries]


async def shown(page: Page) -> list[str]:
    rows = page.locator("#board-table tbody tr")
    return [re.sub(r"\s*\t\s*", "\t", text.strip()) for text in await rows.all_inner_texts()]


async def test_a_board_pages_from_the_top_with_the_keyboard(
    page: Page, base: str, clean_scenario: Scenario, played: Played, shoot: Shoot
) -> None:
    client = clean_scenario.client
    mode = played.matches[0]["mode"]
    whole = settled(client, played, mode)
    assert whole["size"] >= 4, "the played matches put at least four players on the board"
    first = board_page(client, mode, "kills", 2)
    second = board_page(client, mode, "kills", 2, first["continuation"])

    await with_key(page, "read")
    await page.goto(f"{base}/leaderboards/{mode}?stat=kills&limit=2")
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"{mode} leaderboard")
    status = page.get_by_role("status")
    ranks = f"ranks {first['entries'][0]['rank']} to {first['entries'][-1]['rank']}"
    await expect(status).to_have_text(
        f"Showing page 1 of {whole['size']:,} players by kills: {ranks}."
    )
    assert await shown(page) == cells(first["entries"])
    current = page.get_by_role("link", name="Kills")
    await expect(current).to_have_attribute("aria-current", "page")
    await shoot(page, "leaderboard")

    # Lower ranks with the keyboard only; the focus stays on the control.
    lower = page.get_by_role("button", name="Lower ranks")
    await lower.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#board-where")).to_contain_text("Page 2")
    assert await shown(page) == cells(second["entries"])
    await expect(lower).to_be_focused()
    higher = page.get_by_role("button", name="Higher ranks")
    await higher.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#board-where")).to_have_text("Page 1")
    await expect(higher).to_have_attribute("aria-disabled", "true")

    # Another stat is a link away; a row is a link to its player.
    await page.get_by_role("link", name="K/D").focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{base}/leaderboards/{mode}?stat=kd")
    await expect(page.get_by_role("link", name="K/D")).to_have_attribute("aria-current", "page")
    await expect(page.get_by_role("status")).to_contain_text("players by k/d")
    top = board_page(client, mode, "kd", 25)["entries"][0]["player_id"]
    await page.locator("#board-table tbody tr").first.get_by_role("link").click()
    await expect(page).to_have_url(f"{base}/players/{top}")


async def test_an_unknown_stat_says_so(page: Page, base: str) -> None:
    await with_key(page, "read")
    await page.goto(f"{base}/leaderboards/slayer?stat=headshots")
    await expect(page.get_by_role("status")).to_have_text(
        'There is no "headshots" leaderboard: pick one of the stats above.'
    )
    await expect(page.get_by_role("link", name=NAMES["rating"])).to_be_visible()


async def test_the_leaderboard_fits_a_phone_and_has_no_serious_violations(
    narrow_page: Page, base: str, clean_scenario: Scenario, played: Played, shoot: Shoot
) -> None:
    page = narrow_page
    mode = played.matches[0]["mode"]
    settled(clean_scenario.client, played, mode)
    await with_key(page, "read")
    await page.goto(f"{base}/leaderboards/{mode}?stat=rating")
    await expect(page.get_by_role("status")).to_have_text(re.compile("^Showing page 1 of"))
    await assert_fits_the_screen(page, "leaderboard")
    assert await axe_problems(page) == []
    await shoot(page, "leaderboard-narrow")
