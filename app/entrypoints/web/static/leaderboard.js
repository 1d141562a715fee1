// The leaderboard page: a mode's top players by one stat (``?stat=``), a page at a time
// from the top, paged with the API's continuation token (as the player's history is).
// The stats are links, so switching is a page load that works without a mouse or a form.
import {
  ApiError, el, fmtInt, fmtRatio, getJson, openPage, playerLink, section, setStatus, table,
} from "./api.js";
import { fmtSkill } from "./rating.js";

// The API's stats, in the order shown, with their names and how their values read.
const STATS = {
  rating: { name: "Skill rating", column: "Skill", fmt: fmtSkill },
  kills: { name: "Kills", column: "Kills", fmt: fmtInt },
  wins: { name: "Wins", column: "Wins", fmt: fmtInt },
  kd: { name: "K/D", column: "K/D", fmt: fmtRatio },
};
const MAX_PAGE = 100;

function asked() {
  const query = new URLSearchParams(location.search);
  const stat = query.get("stat") ?? "rating";
  // ``?limit=`` (1-100) picks the page size, as the API's own parameter does.
  const limit = Number.parseInt(query.get("limit") ?? "", 10);
  return {
    stat,
    limit: Number.isInteger(limit) && limit >= 1 && limit <= MAX_PAGE ? limit : 25,
  };
}

function statLinks(mode, current) {
  const path = `/leaderboards/${encodeURIComponent(mode)}`;
  return el(
    "nav", { class: "stat-links", "aria-label": "Leaderboard stat" },
    el("ul", {}, Object.entries(STATS).map(([key, { name }]) =>
      el("li", {}, el("a", { href: `${path}?stat=${key}`, "aria-current": key === current ? "page" : null }, name)))),
  );
}

function board(mode, stat, limit) {
  const { name, column, fmt } = STATS[stat];
  // tokens[i] fetches page i; page 0 needs none. Going back re-reads a kept token.
  const tokens = [null];
  let index = 0;
  const holder = el("div", { id: "board-page" });
  const where = el("p", { id: "board-where", class: "pager-where" });
  const higher = el("button", { type: "button", id: "higher" }, "Higher ranks");
  const lower = el("button", { type: "button", id: "lower" }, "Lower ranks");
  const nav = el("nav", { class: "pager", "aria-label": "Leaderboard pages" }, higher, where, lower);

  // aria-disabled, not disabled: a disabled button would drop the keyboard focus.
  let busy = false;
  const usable = (button, ok) => button.setAttribute("aria-disabled", String(!ok));
  async function show(target) {
    if (busy || target < 0 || (target > 0 && !tokens[target])) return;
    busy = true;
    holder.setAttribute("aria-busy", "true");
    try {
      const params = new URLSearchParams({ stat, limit: String(limit) });
      if (tokens[target]) params.set("continuation", tokens[target]);
      const page = await getJson(`/v1/leaderboards/${encodeURIComponent(mode)}?${params}`);
      index = target;
      tokens[index + 1] = page.continuation;
      const entries = page.entries;
      holder.replaceChildren(
        entries.length
          ? table(`${mode}: top players by ${name.toLowerCase()} (page ${index + 1})`, ["Rank", "Player", column],
            entries.map((e) => [e.rank, playerLink(e.player_id), fmt(e.value)]), "board-table")
          : el("p", {}, "No player on this board yet."),
      );
      where.textContent = `Page ${index + 1}${page.continuation ? "" : " (last)"}`;
      const ranks = entries.length ? `ranks ${entries[0].rank} to ${entries[entries.length - 1].rank}` : "no players";
      setStatus(`Showing page ${index + 1} of ${fmtInt(page.size)} players by ${name.toLowerCase()}: ${ranks}.`);
    } catch (error) {
      const text = error instanceof ApiError && error.status === 404
        ? `No such leaderboard: ${error.message}.`
        : `Could not load the leaderboard: ${error.message}`;
      setStatus(text, true);
    } finally {
      busy = false;
      holder.removeAttribute("aria-busy");
      usable(higher, index > 0);
      usable(lower, Boolean(tokens[index + 1]));
    }
  }
  higher.addEventListener("click", () => show(index - 1));
  lower.addEventListener("click", () => show(index + 1));
  return { node: section("board", name, holder, nav), first: () => show(0) };
}

async function main() {
  const mode = openPage("Leaderboard");
  if (!mode) return;
  const { stat, limit } = asked();
  const content = document.getElementById("content");
  content.replaceChildren(statLinks(mode, stat));
  if (!(stat in STATS)) {
    setStatus(`There is no "${stat}" leaderboard: pick one of the stats above.`, true);
    return;
  }
  document.title = `${mode} leaderboard by ${STATS[stat].name} - statsaga`;
  document.getElementById("title").textContent = `${mode} leaderboard`;
  const pages = board(mode, stat, limit);
  content.append(pages.node);
  await pages.first();
}

main();
