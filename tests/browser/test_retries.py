"""A match page showing forward recovery as it happened: a worker whose storage requests
fail (30%, none retried by the SDK) makes some player updates fail past the grain's own
attempts, so the saga schedules durable retries; the page lists each failure and each
retry with the back-off the saga logged, and the players' failed attempts."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.async_api import Page, expect

from devstack.processes import Azurite
from tests.browser.conftest import Shoot, row, steps_about, with_key
from tests.e2e.conftest import StartScenario
from tests.support.invariants import check_invariants
from tests.support.runs import new_matches, post_all, wait_states

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.chaos]
# Batches of 8 matches until one has a durable retry: at 30% faults most do, and five
# nearly always did, but "nearly" failed about one run in fifty. Bounded by time instead.
SEARCH_S = 240.0


def retried(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in log if e["type"] == "RetryScheduled"]


async def test_a_match_page_shows_each_failure_and_retry_with_its_back_off(
    page: Page, start_scenario: StartScenario, azurite: Azurite, shoot: Shoot
) -> None:
    s = start_scenario("retries", "storage=0.3,seed=23", STATSAGA_STORAGE_SDK_RETRIES="0")
    posted: list[str] = []
    found: dict[str, Any] | None = None
    deadline, batch = time.monotonic() + SEARCH_S, 0
    while found is None and time.monotonic() < deadline:
        matches = new_matches(8, seed=700 + batch, population=24, max_size=6)
        batch += 1
        ids = [m["match_id"] for m in matches]
        post_all(s.client, matches)
        posted += ids
        assert wait_states(s.client, dict.fromkeys(ids, "completed"), 240) == dict.fromkeys(
            ids, "completed"
        )
        details = [s.client.get_match(i).json() for i in ids]
        found = next((d for d in details if retried(d["log"])), None)
    assert found is not None, f"no durable retry in {len(posted)} matches at 30% faults"
    # Retried or not, every record is exact.
    verdict = await check_invariants(s.client, azurite.connection_string, s.prefix, posted, ())
    assert verdict.ok and verdict.counted_matches == len(posted), verdict.problems

    await with_key(page, "read")
    await page.goto(f"{s.api.base_url}/matches/{found['match_id']}")
    await expect(page.get_by_role("status")).to_have_text("Saga completed.")
    steps = page.locator("#timeline-list > li")
    await expect(steps).to_have_count(len(found["log"]))
    for entry in retried(found["log"]):
        pid, attempt = entry["player_id"], entry["attempt"]
        retry = steps_about(page, pid, f"retry {attempt} scheduled")
        await expect(retry).to_have_attribute("data-type", "RetryScheduled")
        await expect(retry).to_contain_text(f"after a back-off of {entry['delay_s']:.3f} s")
        failures = steps_about(page, pid, "update failed (transient, will retry)")
        assert await failures.count() >= attempt
    kinds = await steps.evaluate_all("items => items.map(item => item.dataset.type)")
    assert kinds == [e["type"] for e in found["log"]]  # in the saga's order
    # By its header, not its place: the columns before it change as the page grows.
    heads = [h.strip() for h in await page.locator("#players-table thead th").all_inner_texts()]
    attempts = heads.index("Failed attempts") - 1  # the player's cell is the row's <th>
    for line in found["players"]:
        player = row(page, "players-table", line["player_id"])
        await expect(player).to_contain_text("applied")
        await expect(player.locator("td").nth(attempts)).to_have_text(str(line["attempts"]))
    await shoot(page, "match-retries")
