// The player page: service record, skill ratings (skills.js), medals, weapons, per-mode table, and the match
// history one page at a time (newest first), paged with the API's continuation token.
import {
  ApiError, el, facts, fmtInt, fmtPercent, fmtRatio, fmtTime, getJson, matchLink,
  openPage, section, setStatus, table, tokenPager,
} from "./api.js";
import { fmtSkill } from "./rating.js";
import { skills } from "./skills.js";

const MAX_PAGE = 25;

function pageSize() {
  // ``?limit=`` (1-25) picks the history page size, as the API's own parameter does.
  const asked = Number.parseInt(new URLSearchParams(location.search).get("limit") ?? "", 10);
  return Number.isInteger(asked) && asked >= 1 && asked <= MAX_PAGE ? asked : 10;
}

function record(stats) {
  return section(
    "record", "Service record",
    facts([
      ["Matches", fmtInt(stats.matches), "matches"],
      ["Wins", fmtInt(stats.wins), "wins"],
      ["Losses", fmtInt(stats.losses), "losses"],
      ["Ties", fmtInt(stats.ties), "ties"],
      ["Did not finish", fmtInt(stats.dnf), "dnf"],
      ["Win rate", fmtPercent(stats.win_rate), "win_rate"],
      ["Kills", fmtInt(stats.kills), "kills"],
      ["Deaths", fmtInt(stats.deaths), "deaths"],
      ["Assists", fmtInt(stats.assists), "assists"],
      ["K/D", fmtRatio(stats.kd), "kd"],
      ["KDA", fmtRatio(stats.kda), "kda"],
      ["Accuracy", fmtPercent(stats.accuracy), "accuracy"],
      ["Headshots", fmtInt(stats.headshots), "headshots"],
      ["Score", fmtInt(stats.score), "score"],
      ["First played", fmtTime(stats.first_played), "first_played"],
      ["Last played", fmtTime(stats.last_played), "last_played"],
    ]),
  );
}

function byName(entries) {
  return Object.entries(entries).sort(([a], [b]) => a.localeCompare(b));
}

function details(stats) {
  const medals = byName(stats.medals);
  const weapons = byName(stats.weapons);
  const modes = byName(stats.modes);
  return [
    section("medals", "Medals",
      medals.length
        ? table("Medals earned", ["Medal", "Count"], medals.map(([m, n]) => [m, n]), "medals-table")
        : el("p", {}, "No medals yet.")),
    section("weapons", "Weapons",
      weapons.length
        ? table("Kills by weapon", ["Weapon", "Kills", "Headshots"],
          weapons.map(([w, c]) => [w, c.kills ?? 0, c.headshots ?? 0]), "weapons-table")
        : el("p", {}, "No weapon kills yet.")),
    section("modes", "By mode",
      table("Service record by game mode",
        ["Mode", "Skill", "Matches", "Wins", "Win rate", "Kills", "Deaths", "Assists", "K/D", "KDA", "Accuracy"],
        modes.map(([mode, t]) => [
          mode, t.rating ? fmtSkill(t.rating.skill) : "—", t.matches, t.wins, fmtPercent(t.win_rate), t.kills, t.deaths, t.assists,
          fmtRatio(t.kd), fmtRatio(t.kda), fmtPercent(t.accuracy),
        ]), "modes-table")),
  ];
}

function outcomeText(line) {
  return line.void ? `${line.outcome} (voided)` : line.outcome;
}

function history(playerId, limit) {
  return tokenPager({
    id: "history",
    heading: "Match history",
    label: "Match history pages",
    back: { id: "newer", text: "Newer matches" },
    forward: { id: "older", text: "Older matches" },
    load(token) {
      const params = new URLSearchParams({ limit: String(limit) });
      if (token) params.set("continuation", token);
      return getJson(`/v1/players/${encodeURIComponent(playerId)}/matches?${params}`);
    },
    draw(page, index) {
      const node = table(
        `Matches, newest first (page ${index + 1})`,
        ["Match", "Ended", "Mode", "Map", "Team", "Outcome", "Kills", "Deaths", "Assists", "Score"],
        page.matches.map((m) => [
          matchLink(m.match_id), fmtTime(m.ended_at), m.mode, m.map, m.team ?? "—",
          outcomeText(m), m.counters.kills ?? 0, m.counters.deaths ?? 0,
          m.counters.assists ?? 0, m.counters.score ?? 0,
        ]),
        "history-table",
      );
      return [node, `Showing page ${index + 1} of the match history: ${page.matches.length} matches.`];
    },
    failed: (error) => `Could not load the match history: ${error.message}`,
  });
}

async function main() {
  const playerId = openPage("Player");
  if (!playerId) return;
  const content = document.getElementById("content");
  try {
    const stats = await getJson(`/v1/players/${encodeURIComponent(playerId)}/stats`);
    const pages = history(playerId, pageSize());
    const ratings = skills(playerId, stats);
    content.replaceChildren(record(stats), ratings.node, ...details(stats), pages.node);
    await Promise.all([pages.first(), ratings.load()]);
  } catch (error) {
    const text = error instanceof ApiError && error.status === 404
      ? `No record: ${error.message}.`
      : `Could not load the player: ${error.message}`;
    setStatus(text, true);
  }
}

main();
