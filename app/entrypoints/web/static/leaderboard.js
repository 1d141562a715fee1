// The leaderboard page: a mode's top players by one stat (``?stat=``), a page at a time
// from the top, paged with the API's continuation token (as the player's history is).
// The stats are links, so switching is a page load that works without a mouse or a form.
import {
  ApiError, el, fmtInt, fmtRatio, getJson, openPage, playerLink, setStatus, table, tokenPager,
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
  return tokenPager({
    id: "board",
    heading: name,
    label: "Leaderboard pages",
    back: { id: "higher", text: "Higher ranks" },
    forward: { id: "lower", text: "Lower ranks" },
    load(token) {
      const params = new URLSearchParams({ stat, limit: String(limit) });
      if (token) params.set("continuation", token);
      return getJson(`/v1/leaderboards/${encodeURIComponent(mode)}?${params}`);
    },
    draw(page, index) {
      const entries = page.entries;
      const node = entries.length
        ? table(`${mode}: top players by ${name.toLowerCase()} (page ${index + 1})`, ["Rank", "Player", column],
          entries.map((e) => [e.rank, playerLink(e.player_id), fmt(e.value)]), "board-table")
        : el("p", {}, "No player on this board yet.");
      const ranks = entries.length ? `ranks ${entries[0].rank} to ${entries[entries.length - 1].rank}` : "no players";
      return [node, `Showing page ${index + 1} of ${fmtInt(page.size)} players by ${name.toLowerCase()}: ${ranks}.`];
    },
    failed: (error) => (error instanceof ApiError && error.status === 404
      ? `No such leaderboard: ${error.message}.`
      : `Could not load the leaderboard: ${error.message}`),
  });
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
