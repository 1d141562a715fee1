"""The browser tests find a player's row or step by its whole id: ``p-x-1`` is a prefix of
``p-x-15``, and a match of 16 players has both (a clean-clone CI once failed on it)."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import row, steps_about

# The shape the match page draws (app/entrypoints/web/static/api.js `table`, match.js `step`).
PAGE = """
<table id="players-table"><tbody>
  <tr><th scope="row"><a href="/players/p-x-15">p-x-15</a></th><td>alpha</td><td>applied</td></tr>
  <tr><th scope="row"><a href="/players/p-x-1">p-x-1</a></th><td>p-x-15</td><td>dead</td></tr>
</tbody></table>
<ol id="timeline-list">
  <li data-type="PlayerApplied"><span class="offset">+0.100 s</span>
    <span class="tag">applied</span> <span class="what">p-x-15: update applied</span> 12:00:01</li>
  <li data-type="PlayerFailed"><span class="offset">+0.200 s</span>
    <span class="tag">failed</span>
    <span class="what">p-x-1: update failed (permanent)</span> 12:00:02</li>
</ol>
"""


async def test_a_row_is_found_by_its_whole_id(page: Page) -> None:
    await page.set_content(PAGE)
    await expect(row(page, "players-table", "p-x-1")).to_have_count(1)
    await expect(row(page, "players-table", "p-x-1")).to_contain_text("dead")
    await expect(row(page, "players-table", "p-x-15")).to_contain_text("applied")
    await expect(row(page, "players-table", "p-x-15", column=2)).to_contain_text("dead")
    await expect(row(page, "players-table", "p-x")).to_have_count(0)


async def test_a_step_is_found_by_its_whole_player_id(page: Page) -> None:
    await page.set_content(PAGE)
    await expect(steps_about(page, "p-x-1")).to_have_count(1)
    await expect(steps_about(page, "p-x-1", "update failed (permanent)")).to_have_count(1)
    await expect(steps_about(page, "p-x-1", "update applied")).to_have_count(0)
    await expect(steps_about(page, "p-x-15", "update applied")).to_have_count(1)
