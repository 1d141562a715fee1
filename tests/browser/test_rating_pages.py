"""Ratings on the pages, in headless Chromium over the real stack: the player page's skill
per mode with its chart over the match history, and the match page's skill before and
after for each player. The expected numbers are the API's own answers for the same
matches (the ratings themselves are checked against openskill in the unit tests)."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Played, assert_fits_the_screen, row, stat, with_key
from tests.e2e.conftest import KEYS, Scenario
from tests.support.client import StatsClient
from tests.support.matches import random_match
from tests.support.runs import wait_states

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
MINUS = "\u2212"  # the pages write a fall with a minus sign, not a hyphen


@pytest.fixture(scope="module")
def voided_series(clean_scenario: Scenario) -> tuple[str, list[str]]:
    """Three slayer matches of one pair, an hour apart, played and rated in order; an
    operator then voids the middle one. Returns the first player and the match ids,
    oldest first."""
    run = uuid.uuid4().hex[:6]
    pair = [f"p-{run}-one", f"p-{run}-two"]
    client, rng = clean_scenario.client, random.Random(23)
    now = datetime.now(UTC).replace(microsecond=0)
    ids = []
    for i in range(3):
        ended = now - timedelta(hours=3 - i)
        match = random_match(rng, f"m-{run}-{i}", pair, size=2, ended_at=ended)
        match["mode"] = "slayer"
        sides = [("red", "win"), ("blue", "loss")]
        for line, (team, outcome) in zip(match["players"], sides, strict=True):
            line.update(team=team, outcome=outcome)
        assert client.post_match(match).status_code == 202
        assert client.wait_finished([match["match_id"]], 90) == {match["match_id"]: "completed"}
        ids.append(match["match_id"])
    answer = client.http.post(
        f"/v1/matches/{ids[1]}/invalidate",
        json={"reason": "boosting"},
        headers={"Authorization": f"Bearer {KEYS['admin']}"},
    )
    assert answer.status_code == 202, answer.text
    assert wait_states(client, {ids[1]: "compensated"}, 90) == {ids[1]: "compensated"}
    return pair[0], ids


def whole_history(client: StatsClient, player_id: str) -> list[dict[str, Any]]:
    """Every line of the player's history, newest first, as the API pages it."""
    lines: list[dict[str, Any]] = []
    token = None
    while True:
        page = client.history(player_id, 25, token).json()
        lines += page["matches"]
        token = page["continuation"]
        if not token:
            return lines


def signed(change: float) -> str:
    """A skill change as the pages write it: its sign, then two places."""
    size = f"{abs(change):.2f}"
    if size == "0.00":
        return f"±{size}"
    return ("+" if change > 0 else MINUS) + size


def with_standings(client: Any, player: str) -> dict[str, Any]:
    """The player's record once the leaderboards have it in every rated mode and it holds
    still (the boards follow the records within seconds)."""
    deadline = time.monotonic() + 30
    last: dict[str, Any] | None = None
    while True:
        served = dict(client.stats(player).json())
        placed = all(
            (served["modes"][m].get("standing") or {}).get("rating") for m in served["ratings"]
        )
        if placed and served == last:
            return served
        assert time.monotonic() < deadline, f"no standing for {player}: {served['modes']}"
        last = served
        time.sleep(0.5)


def skill_path(lines: list[dict[str, Any]], current: dict[str, Any]) -> list[float]:
    """The skill after each rated match, walked back from the current rating (as the chart
    draws it): the last is the current skill, each earlier one takes the later changes
    back (mu and sigma apart, skill being mu - 3 sigma)."""
    mu, sigma = current["mu"], current["sigma"]
    path: list[float] = []
    for line in reversed(lines):
        path.append(mu - 3 * sigma)
        before, after = line["rating"]["before"], line["rating"]["after"]
        mu -= after["mu"] - before["mu"]
        sigma -= after["sigma"] - before["sigma"]
    return path[::-1]


async def test_the_player_page_shows_each_modes_skill_and_its_chart(
    page: Page, base: str, clean_scenario: Scenario, played: Played
) -> None:
    client = clean_scenario.client
    served = with_standings(client, played.player)
    # Every match of the player completed, so every mode they played is rated.
    assert sorted(served["ratings"]) == sorted({m["mode"] for m in played.matches})
    history = whole_history(client, played.player)

    await with_key(page, "read")
    await page.goto(f"{base}/players/{played.player}")
    note = page.locator("#ratings-note")
    await expect(note).to_contain_text(f"Charts: all {len(played.matches)} matches.")
    for mode, rating in served["ratings"].items():
        await expect(stat(page, f"skill:{mode}")).to_have_text(f"{rating['skill']:.2f}")
        await expect(stat(page, f"mu_sigma:{mode}")).to_have_text(
            f"{rating['mu']:.2f} ± {rating['sigma']:.2f}"
        )
        await expect(stat(page, f"rated:{mode}")).to_have_text(str(rating["matches"]))
        place = served["modes"][mode]["standing"]["rating"]
        await expect(stat(page, f"rank:{mode}")).to_have_text(
            f"#{place['rank']:,} · top {round(100 - place['percentile'], 1):g}%"
        )
        await expect(row(page, "modes-table", mode)).to_contain_text(f"{rating['skill']:.2f}")

        # The chart: the skill after each rated match of the mode, in the order rated (the
        # fixture posts the newest first), then oldest first.
        rated = [m for m in reversed(history) if m["mode"] == mode and m["rating"]]
        lines = sorted(rated, key=lambda m: m["rating"]["before"]["matches"])
        assert len(lines) == rating["matches"]
        card = page.locator(f'article[data-mode="{mode}"]')
        chart = card.get_by_role("img")
        await expect(chart).to_have_attribute("data-points", str(len(lines)))
        path = skill_path(lines, rating)
        assert round(path[-1], 2) == rating["skill"]  # the chart ends at the record's skill
        first, last = path[0], path[-1]
        await expect(chart).to_have_accessible_name(
            f"Skill in {mode} over {len(lines)} rated matches, in the order rated: "
            f"from {first:.2f} to {last:.2f}"
        )
        await expect(chart.locator("circle")).to_have_count(len(lines))
        await card.get_by_text("The numbers").click()
        cells = card.locator("tbody tr td:nth-child(2)")
        await expect(cells).to_have_text([f"{skill:.2f}" for skill in path])
        link = card.get_by_role("link", name=f"{mode} leaderboard")
        await expect(link).to_have_attribute("href", f"/leaderboards/{mode}?stat=rating")


async def test_a_voided_match_leaves_the_chart(
    page: Page, base: str, clean_scenario: Scenario, voided_series: tuple[str, list[str]]
) -> None:
    player, ids = voided_series
    rating = clean_scenario.client.stats(player).json()["ratings"]["slayer"]
    assert rating["matches"] == 2, "the void took its match's rating change back"
    await with_key(page, "read")
    await page.goto(f"{base}/players/{player}")
    await expect(page.locator("#ratings-note")).to_contain_text(
        "Charts: all 3 matches. Voided matches are left out."
    )
    card = page.locator('article[data-mode="slayer"]')
    await expect(card.get_by_role("img")).to_have_attribute("data-points", "2")
    await card.get_by_text("The numbers").click()
    await expect(card.locator("tbody tr th a")).to_have_text([ids[0], ids[2]])
    await expect(stat(page, "rated:slayer")).to_have_text("2")


async def test_the_match_page_shows_each_players_skill_before_and_after(
    page: Page, base: str, clean_scenario: Scenario, played: Played
) -> None:
    match_id = played.ids[0]
    served = clean_scenario.client.get_match(match_id).json()
    await with_key(page, "read")
    await page.goto(f"{base}/matches/{match_id}")
    await expect(page.get_by_role("status")).to_have_text("Saga completed.")
    for line in served["players"]:
        rating = line["rating"]
        assert rating is not None, f"{line['player_id']} was not rated"
        before, after = rating["before"]["skill"], rating["after"]["skill"]
        change = signed(rating["skill_change"])
        their_row = row(page, "players-table", line["player_id"])
        await expect(their_row).to_contain_text(f"{before:.2f} → {after:.2f} {change}")
        way = {"+": "up", "±": "flat"}.get(change[0], "down")
        await expect(their_row.locator(f".change-{way}")).to_have_text(change)


async def test_the_ratings_fit_a_phone_screen(narrow_page: Page, base: str, played: Played) -> None:
    await with_key(narrow_page, "read")
    await narrow_page.goto(f"{base}/players/{played.player}")
    await expect(narrow_page.locator("#ratings-note")).to_contain_text("Charts:")
    await assert_fits_the_screen(narrow_page, "player ratings")
