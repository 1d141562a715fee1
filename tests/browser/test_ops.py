"""The operator console as operators use it, in headless Chromium: it asks for the admin
key, its counters refresh by themselves, a pool is resized from the keyboard, a dead
letter is replayed once its cause is fixed; a phone-sized screen; axe-core."""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableServiceClient
from playwright.async_api import Page, Route, expect

from devstack.processes import Azurite
from tests.browser.conftest import (
    Shoot,
    assert_fits_the_screen,
    axe_problems,
    make_stuck,
    row,
    stat,
    with_key,
)
from tests.e2e.conftest import KEYS, Scenario
from tests.support.matches import random_match
from tests.support.runs import wait_states

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
REFRESH_S = 5  # the console's refresh period
SLOW = 90_000  # ms: a resize starts or stops Ray actor processes


async def accepted(page: Page) -> int:
    """The console's "Matches accepted" counter, without its rate."""
    text = await stat(page, "ingest-accepted").inner_text()
    return int(text.split(" ")[0].replace(",", ""))


async def ready(page: Page) -> None:
    await expect(page.get_by_role("status")).to_have_text("Console ready.", timeout=30_000)


async def test_console_asks_for_the_admin_key_refreshes_and_resizes_a_pool(
    page: Page, base: str, clean_scenario: Scenario, shoot: Shoot
) -> None:
    # A read key is not enough: the console says why and asks for another.
    await with_key(page, "read")
    await page.goto(f"{base}/ops")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Operator console")
    key = page.get_by_label("API key")
    await expect(key).to_be_focused()
    await expect(page.locator("#key-why")).to_have_text(
        "The API refused that key: this key has role 'read'; needs 'admin'."
    )
    await key.fill(KEYS["admin"])
    await key.press("Enter")
    await ready(page)

    # The counters refresh by themselves: a match posted now shows up without a reload.
    before = await accepted(page)
    run = uuid.uuid4().hex[:6]
    match = random_match(random.Random(3), f"m-{run}-live", [f"p-{run}-a", f"p-{run}-b"], size=2)
    assert clean_scenario.client.post_match(match).status_code == 202
    await expect(stat(page, "ingest-accepted")).to_have_text(
        re.compile(rf"^{before + 1:,} \(\d+\.\d/s\)$"), timeout=3 * REFRESH_S * 1000
    )
    await expect(stat(page, "queue-matches-active")).to_have_text(re.compile(r"^\d+$"))

    # Every member of each pool answers, with its counters.
    pools = clean_scenario.client.http.get(
        "/v1/admin/pools", headers={"Authorization": f"Bearer {KEYS['admin']}"}
    ).json()["pools"]
    size = pools["player"]["size"]
    members = page.locator("#members-player tbody tr")
    await expect(members).to_have_count(size)
    await expect(members.filter(has_text="not answering")).to_have_count(0)
    await expect(page.locator("#members-game tbody tr")).to_have_count(pools["game"]["size"])
    # The board pool too, each member with the modes it holds.
    boards = page.locator("#members-board tbody tr")
    await expect(boards).to_have_count(pools["board"]["size"])
    await expect(boards.filter(has_text="not answering")).to_have_count(0)
    await expect(page.get_by_label("Members of the board pool")).to_have_value(
        str(pools["board"]["size"])
    )
    await shoot(page, "ops")

    # Grow the player pool by one from the keyboard, then shrink it back.
    field = page.get_by_label("Members of the player pool")
    await expect(field).to_have_value(str(size))
    await field.focus()
    for new, old in ((size + 1, size), (size, size + 1)):
        await field.fill(str(new))
        await field.press("Enter")
        await expect(page.get_by_role("status")).to_have_text(
            re.compile(rf"^Resized the player pool from {old} to {new} in [\d.]+ s\.$"),
            timeout=SLOW,
        )
        await expect(members).to_have_count(new)
        await expect(members.filter(has_text="not answering")).to_have_count(0)
        await expect(page.locator("#last-resize")).to_contain_text(f"from {old} to {new}")
        await expect(field).to_be_focused()  # the redrawn section kept the focus

    # A size past the bounds is refused, and the status says which field and why.
    await field.fill("5000")
    await page.get_by_role("button", name="Resize the player pool").click()
    await expect(page.get_by_role("status")).to_have_text(
        re.compile(r"^Could not resize the player pool: size: .*1024")
    )
    await expect(members).to_have_count(size)


async def test_console_replays_a_dead_letter_once_its_cause_is_fixed(
    page: Page, base: str, clean_scenario: Scenario, azurite: Azurite, shoot: Shoot
) -> None:
    mid, victim = make_stuck(clean_scenario, azurite)
    await with_key(page, "admin")
    await page.goto(f"{base}/ops")
    await ready(page)

    # The stuck saga is listed with its dead player, and the dead letter about it.
    await page.get_by_label("Show sagas").select_option("stuck")
    await expect(page.get_by_role("status")).to_have_text("Showing stuck sagas.")
    await expect(page.locator("#sagas-table caption")).to_contain_text("stuck saga")
    saga = row(page, "sagas-table", mid)
    await expect(saga.locator("td").nth(2)).to_have_text(victim)  # its dead players
    letter = row(page, "deadletters-table", mid, column=2)
    await expect(letter).to_contain_text("PlayerStepFailed", timeout=3 * REFRESH_S * 1000)
    await expect(letter.locator("td").nth(1)).to_have_text(victim)  # its player
    await expect(stat(page, "queue-player-updates-dead_letter")).not_to_have_text(
        "0", timeout=3 * REFRESH_S * 1000
    )
    await shoot(page, "ops-dead-letter")

    # The operator repairs the player's record (the cause), then replays that one letter.
    with TableServiceClient.from_connection_string(azurite.connection_string) as tables:
        table = tables.get_table_client(f"{clean_scenario.prefix}players")
        table.delete_entity(victim, "record")
    replay = page.get_by_role("button", name=f"Replay the dead letter of {mid} for {victim}")
    await replay.focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_have_text(
        "Replayed 1 dead letter, dropped 0.", timeout=30_000
    )
    await expect(page.locator("#replay-report")).to_contain_text(f"re-drive of match {mid}")
    await expect(letter).to_have_count(0)

    # The saga re-drives the dead player and completes; the player now has the match.
    assert wait_states(clean_scenario.client, {mid: "completed"}, 90) == {mid: "completed"}
    assert clean_scenario.client.stats(victim).json()["matches"] == 1
    await expect(saga).to_have_count(0, timeout=3 * REFRESH_S * 1000)

    # Its timeline tells the story: dead-lettered, stuck, re-driven, applied, completed.
    await page.goto(f"{base}/matches/{mid}")
    await expect(page.get_by_role("status")).to_have_text("Saga completed.")
    kinds = await page.locator("#timeline-list > li").evaluate_all(
        "items => items.map(item => item.dataset.type)"
    )
    tail = kinds[kinds.index("PlayerDeadLettered") :]
    assert tail[:3] == ["PlayerDeadLettered", "SagaStuck", "SagaRedriven"], kinds
    assert tail[-2:] == ["PlayerApplied", "SagaCompleted"], kinds


async def test_console_fits_a_phone_and_has_no_serious_accessibility_violations(
    narrow_page: Page, base: str, shoot: Shoot
) -> None:
    page = narrow_page
    await with_key(page, "admin")
    await page.goto(f"{base}/ops")
    await ready(page)
    await expect(page.locator("#members-player tbody tr").first).to_be_visible()
    await assert_fits_the_screen(page, "/ops")
    await shoot(page, "ops-narrow")
    await page.get_by_role("button", name="Pause refresh").press("Enter")  # axe sees one DOM
    await expect(page.get_by_role("button", name="Resume refresh")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert await axe_problems(page) == []


async def test_console_backs_off_while_a_section_fails(page: Page, base: str) -> None:
    await with_key(page, "admin")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    await page.clock.install(time=start)
    await page.clock.pause_at(start + timedelta(seconds=1))
    failing = 2
    reads = 0

    async def answer(route: Route) -> None:
        nonlocal failing, reads
        reads += 1
        if failing:
            failing -= 1
            await route.fulfill(status=503, json={"detail": "pools unavailable"})
        else:
            await route.continue_()

    await page.route("**/v1/admin/pools", answer)
    await page.goto(f"{base}/ops")
    await ready(page)
    refreshed = page.locator("#refreshed")
    for waited_s in (2 * REFRESH_S, 4 * REFRESH_S):
        await expect(refreshed).to_contain_text(f"next refresh in {waited_s} s.")
        await expect(page.get_by_text("Could not load: pools unavailable")).to_be_visible()
        before = reads
        await page.clock.run_for(waited_s * 1000 - 100)
        await asyncio.sleep(0.3)  # a read made now would have reached the route by then
        assert reads == before, f"read again before {waited_s} s"
        await page.clock.run_for(100)
    await expect(refreshed).to_contain_text(f"every {REFRESH_S} s.")
    await expect(page.locator("#members-player tbody tr").first).to_be_visible()
    assert reads == 3
