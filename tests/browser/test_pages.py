"""The player and match pages as people use them, in headless Chromium: asked for a key,
the record matches what was posted, the history pages with the keyboard, a match shows
its saga timeline; a failed saga's dead letter; a phone-sized screen; axe-core."""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Locator, Page, Route, expect

from devstack.processes import Azurite
from tests.browser.conftest import (
    Played,
    Shoot,
    assert_fits_the_screen,
    axe_problems,
    make_stuck,
    row,
    stat,
    steps_about,
    with_key,
)
from tests.e2e.conftest import KEYS, Scenario
from tests.support.matches import expected_totals, random_match
from tests.support.runs import wait_states

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
PAGE = 3  # history page size the tests ask for: 7 matches make pages of 3, 3 and 1


@pytest.fixture(scope="package")
def stuck(clean_scenario: Scenario, azurite: Azurite) -> tuple[str, str]:
    """A match whose saga is stuck, and its dead player (see ``make_stuck``)."""
    return make_stuck(clean_scenario, azurite)


@pytest.fixture(scope="package")
def voided(clean_scenario: Scenario) -> dict[str, Any]:
    """A completed match an operator then voided: its saga compensated every player."""
    run = uuid.uuid4().hex[:6]
    match = random_match(random.Random(5), f"m-{run}-void", [f"p-{run}-a", f"p-{run}-b"], size=2)
    client, mid = clean_scenario.client, match["match_id"]
    assert client.post_match(match).status_code == 202
    assert wait_states(client, {mid: "completed"}, 90) == {mid: "completed"}
    answer = client.http.post(
        f"/v1/matches/{mid}/invalidate",
        json={"reason": "cheating"},
        headers={"Authorization": f"Bearer {KEYS['admin']}"},
    )
    assert answer.status_code == 202, answer.text
    assert wait_states(client, {mid: "compensated"}, 90) == {mid: "compensated"}
    return match


async def history_ids(page: Page) -> list[str]:
    return await page.locator("#history-table tbody tr th a").all_inner_texts()


async def tab_to(page: Page, target: Locator, most: int = 60) -> None:
    """Press Tab until ``target`` has the focus: it must be reachable without a mouse."""
    for _ in range(most):
        await page.keyboard.press("Tab")
        if await target.evaluate("node => node === document.activeElement"):
            return
    raise AssertionError(f"{target} not reached in {most} presses of Tab")


async def test_player_page_record_history_paging_and_a_match_timeline(
    page: Page, base: str, clean_scenario: Scenario, played: Played, shoot: Shoot
) -> None:
    await page.goto(f"{base}/players/{played.player}?limit={PAGE}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Player {played.player}")

    # Reads need a key here: the page asks for one, says why a wrong one failed, retries.
    key = page.get_by_label("API key")
    await expect(key).to_be_focused()
    await key.fill("not-a-key")
    await key.press("Enter")
    await expect(page.locator("#key-why")).to_contain_text("unknown API key")
    await key.fill(KEYS["read"])
    await key.press("Enter")
    await expect(page.locator("#key-form")).to_be_hidden()
    await expect(page.get_by_role("status")).to_have_text(
        f"Showing page 1 of the match history: {PAGE} matches."
    )

    # The record shows the sums of what was posted, and the API's own ratios.
    totals = expected_totals(played.matches)[played.player]["counters"]
    for name in ("matches", "wins", "losses", "kills", "deaths", "assists", "headshots"):
        await expect(stat(page, name)).to_have_text(f"{totals[name]:,}")
    served = clean_scenario.client.stats(played.player).json()
    await expect(stat(page, "kd")).to_have_text(f"{served['kd']:.2f}")
    await expect(stat(page, "kda")).to_have_text(f"{served['kda']:.2f}")
    await expect(stat(page, "accuracy")).to_have_text(f"{served['accuracy'] * 100:.1f}%")
    await expect(stat(page, "win_rate")).to_have_text(f"{served['win_rate'] * 100:.1f}%")
    modes = page.locator("#modes-table tbody tr")
    await expect(modes).to_have_count(len(served["modes"]))
    assert await history_ids(page) == played.ids[:3]
    await shoot(page, "player")

    # Older matches, with the keyboard only; the focus stays on the control.
    older = page.get_by_role("button", name="Older matches")
    await tab_to(page, older)
    await page.keyboard.press("Enter")
    await expect(page.locator("#history-where")).to_have_text("Page 2")
    assert await history_ids(page) == played.ids[3:6]
    await expect(older).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#history-where")).to_have_text("Page 3 (last)")
    assert await history_ids(page) == played.ids[6:]
    await expect(older).to_have_attribute("aria-disabled", "true")
    await page.keyboard.press("Enter")  # nothing older: the page stays
    await expect(page.locator("#history-where")).to_have_text("Page 3 (last)")

    # The oldest match's page: its teams, lines and every player applied on the timeline.
    oldest = played.matches[-1]
    link = page.get_by_role("link", name=oldest["match_id"])
    await link.focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{base}/matches/{oldest['match_id']}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Match {oldest['match_id']}")
    await expect(page.locator("#key-form")).to_be_hidden()  # the tab kept the key
    await expect(stat(page, "state")).to_have_text("completed")
    await expect(stat(page, "time_to_consistency")).to_have_text(re.compile(r"^\d+\.\d{3} s$"))
    timeline = page.locator("#timeline-list > li")
    await expect(timeline.first).to_have_attribute("data-type", "SagaStarted")
    await expect(timeline.last).to_have_attribute("data-type", "SagaCompleted")
    applied = page.locator('#timeline-list > li[data-type="PlayerApplied"]')
    await expect(applied).to_have_count(len(oldest["players"]))
    for line in oldest["players"]:
        await expect(steps_about(page, line["player_id"], "update applied")).to_have_count(1)
        await expect(row(page, "players-table", line["player_id"])).to_contain_text("applied")
    await expect(page.get_by_role("status")).to_have_text("Saga completed.")
    await shoot(page, "match")

    # Back to a player from the match: links go both ways.
    await page.get_by_role("link", name=played.player).click()
    await expect(page).to_have_url(f"{base}/players/{played.player}")
    await expect(stat(page, "matches")).to_have_text(str(totals["matches"]))


async def test_a_stuck_saga_shows_its_failure_and_dead_letter(
    page: Page, base: str, stuck: tuple[str, str], shoot: Shoot
) -> None:
    mid, victim = stuck
    await with_key(page, "read")
    await page.goto(f"{base}/matches/{mid}")
    await expect(stat(page, "state")).to_have_text("stuck")
    await expect(stat(page, "time_to_consistency")).to_have_text("not yet consistent")
    failed = steps_about(page, victim, "update failed (permanent)")
    await expect(failed).to_have_count(1)
    dead = page.locator('#timeline-list > li[data-type="PlayerDeadLettered"]')
    await expect(dead).to_contain_text(f"{victim}: dead-lettered")
    await expect(page.locator('#timeline-list > li[data-type="SagaStuck"]')).to_contain_text(victim)
    await expect(row(page, "players-table", victim)).to_contain_text("dead")
    await expect(page.get_by_role("status")).to_have_text("Saga stuck.")
    await shoot(page, "match-stuck")


async def test_a_voided_match_shows_its_compensation(
    page: Page, base: str, voided: dict[str, Any], shoot: Shoot
) -> None:
    await with_key(page, "read")
    await page.goto(f"{base}/matches/{voided['match_id']}")
    await expect(stat(page, "state")).to_have_text("compensated")
    started = page.locator('#timeline-list > li[data-type="CompensationStarted"]')
    await expect(started).to_contain_text("Compensation started: cheating")
    reverted = page.locator('#timeline-list > li[data-type="PlayerCompensated"]')
    await expect(reverted).to_have_count(2)
    await expect(reverted).to_contain_text(["match reverted from the record"] * 2)
    await expect(page.locator("#timeline-list > li").last).to_have_attribute(
        "data-type", "SagaCompensated"
    )
    for line in voided["players"]:
        await expect(row(page, "players-table", line["player_id"])).to_contain_text("compensated")
    await expect(page.get_by_role("status")).to_have_text("Saga compensated.")
    await shoot(page, "match-compensated")


async def test_pages_fit_a_phone_screen(
    narrow_page: Page, base: str, played: Played, shoot: Shoot
) -> None:
    page = narrow_page
    await with_key(page, "read")
    for path, name in (
        (f"/players/{played.player}?limit={PAGE}", "player-narrow"),
        (f"/matches/{played.ids[0]}", "match-narrow"),
    ):
        await page.goto(base + path)
        await expect(page.get_by_role("status")).to_have_text(
            re.compile(r"^(Showing page 1|Saga completed)")
        )
        await assert_fits_the_screen(page, path)
        await shoot(page, name)


async def test_no_serious_accessibility_violations(
    page: Page, base: str, played: Played, stuck: tuple[str, str]
) -> None:
    problems = {}
    # The key form first (no key yet), then each page as drawn with one.
    await page.goto(f"{base}/players/{played.player}")
    await expect(page.get_by_label("API key")).to_be_visible()
    problems["key form"] = await axe_problems(page)
    await page.get_by_label("API key").fill(KEYS["read"])
    await page.get_by_label("API key").press("Enter")
    await expect(page.get_by_role("status")).to_have_text(re.compile("^Showing page 1"))
    problems["player"] = await axe_problems(page)
    for mid in (played.ids[0], stuck[0]):
        await page.goto(f"{base}/matches/{mid}")
        await expect(page.get_by_role("status")).to_have_text(re.compile("^Saga (completed|stuck)"))
        problems[mid] = await axe_problems(page)
    assert {where: found for where, found in problems.items() if found} == {}


async def test_unknown_player_says_so(page: Page, base: str) -> None:
    await with_key(page, "read")
    await page.goto(f"{base}/players/p-nobody-{uuid.uuid4().hex[:6]}")
    await expect(page.get_by_role("status")).to_contain_text("No record: player")
    await expect(page.get_by_role("status")).to_contain_text("has no matches")


async def test_the_match_page_backs_off_while_the_api_fails_and_polls_conditionally(
    page: Page, base: str, played: Played
) -> None:
    match_id = played.ids[0]
    await with_key(page, "read")
    # Timers on a clock the test moves: the waits are checked without being waited out.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    await page.clock.install(time=start)
    await page.clock.pause_at(start + timedelta(seconds=1))
    failures: list[tuple[int, dict[str, str]]] = [
        (503, {}),
        (503, {}),
        (429, {"Retry-After": "30"}),
    ]
    reads: list[tuple[str | None, int]] = []  # each read's If-None-Match and answer status

    async def answer(route: Route) -> None:
        if failures:
            status, headers = failures.pop(0)
            reads.append((None, status))
            await route.fulfill(status=status, headers=headers, json={"detail": "try later"})
            return
        response = await route.fetch()  # the real API
        reads.append((route.request.headers.get("if-none-match"), response.status))
        if response.status == 200:  # shown as still running, so that the page polls on
            await route.fulfill(
                response=response, json={**await response.json(), "state": "running"}
            )
        else:
            await route.fulfill(response=response)

    await page.route(f"**/v1/matches/{match_id}", answer)
    await page.goto(f"{base}/matches/{match_id}")
    status = page.get_by_role("status")
    for waited_ms, notice in [(4000, "4 seconds"), (8000, "8 seconds"), (30_000, "30 seconds")]:
        await expect(status).to_contain_text(f"try later. Trying again in {notice}.")
        before = len(reads)
        await page.clock.run_for(waited_ms - 100)
        await asyncio.sleep(0.3)  # a read made now would have reached the route by then
        assert len(reads) == before, f"read again before the {notice} were up"
        await page.clock.run_for(100)

    # Back to every 2 s; the next poll sends the ETag and the unchanged match is a 304.
    await expect(status).to_have_text("Saga running: this page refreshes every 2 seconds.")
    await expect(stat(page, "state")).to_have_text("running")
    await page.clock.run_for(2000)
    for _ in range(50):
        if len(reads) == 5:
            break
        await asyncio.sleep(0.1)
    etag = (
        await page.request.get(
            f"{base}/v1/matches/{match_id}", headers={"Authorization": f"Bearer {KEYS['read']}"}
        )
    ).headers["etag"]
    assert reads[3:] == [(None, 200), (etag, 304)]
    await expect(status).to_have_text("Saga running: this page refreshes every 2 seconds.")
    await expect(stat(page, "state")).to_have_text("running")
