// The player page's skill ratings: each rated mode's displayed skill (with mu ± sigma and
// the matches it rated), and a chart of the skill after each of the player's matches in
// that mode, in rating order, from the newest HISTORY_CAP matches of their history,
// ending at the current skill.
import { el, facts, fmtInt, getJson, matchLink, section, table } from "./api.js";
import { lineChart } from "./chart.js";
import { change, fmtMuSigma, fmtSkill } from "./rating.js";

// The history read for the charts: the newest matches, at the API's largest page size.
// A cap keeps a veteran's page to a few reads; the page says where the charts start.
export const HISTORY_CAP = 100;
const CHART_PAGE = 25;
const OTHER = "_other"; // the record's overflow bucket: several modes, no leaderboard

/** The player's newest history lines, at most ``HISTORY_CAP``, newest first; and whether
 * the history goes on beyond them. */
async function newestMatches(playerId) {
  const lines = [];
  let token = null;
  do {
    const params = new URLSearchParams({ limit: String(Math.min(CHART_PAGE, HISTORY_CAP - lines.length)) });
    if (token) params.set("continuation", token);
    const page = await getJson(`/v1/players/${encodeURIComponent(playerId)}/matches?${params}`);
    lines.push(...page.matches);
    token = page.continuation;
  } while (token && lines.length < HISTORY_CAP);
  return { lines, more: Boolean(token) };
}

/** Each mode's rated, not voided matches in the order they were rated: by the matches
 * the rating had counted before each (matches posted late, or at once, are rated after
 * ones that ended later), then oldest first. */
function ratedByMode(lines) {
  const byMode = new Map();
  for (const line of [...lines].reverse()) {
    if (line.void || !line.rating) continue;
    if (!byMode.has(line.mode)) byMode.set(line.mode, []);
    byMode.get(line.mode).push(line);
  }
  for (const rated of byMode.values()) rated.sort((a, b) => a.rating.before.matches - b.rating.before.matches);
  return byMode;
}

const modeName = (mode) => (mode === OTHER ? "Other modes" : mode);

/** The skill after each of ``lines`` (in rating order), walked back from the ``current``
 * rating: the last point is the skill the record shows, and each point before it is that
 * minus the changes of the matches rated after it. A match's own "after" (the rating it
 * read plus its change) would not add up when matches were rated at the same time, each
 * from the same rating. Mu and sigma are walked separately: skill is mu - 3 sigma. */
export function skillPath(lines, current) {
  let { mu, sigma } = current;
  const path = new Array(lines.length);
  for (let i = lines.length - 1; i >= 0; i -= 1) {
    path[i] = mu - 3 * sigma;
    const { before, after } = lines[i].rating;
    mu -= after.mu - before.mu;
    sigma -= after.sigma - before.sigma;
  }
  return path;
}

function chartOf(mode, index, lines, current) {
  if (lines === null) return el("p", { class: "muted" }, "Loading the chart…");
  if (!lines.length) return el("p", { class: "muted" }, "No rated match of this mode among the matches read.");
  const values = skillPath(lines, current);
  const first = fmtSkill(values[0]);
  const last = fmtSkill(values[values.length - 1]);
  const title = `Skill in ${modeName(mode)} over ${lines.length} rated matches, in the order rated: from ${first} to ${last}`;
  return el(
    "figure", { class: "skill-chart" },
    lineChart(`chart-${index}`, title, values, fmtSkill),
    el("figcaption", {}, `From ${first} to ${last} over ${lines.length} rated matches`),
    el("details", {},
      el("summary", {}, "The numbers"),
      table(`Skill after each rated ${modeName(mode)} match, in the order rated`, ["Match", "Skill after", "Change"],
        lines.map((l, i) => [matchLink(l.match_id), fmtSkill(values[i]), change(l.rating.skill_change)]),
        `chart-${index}-table`)),
  );
}

/** The player's place on the mode's skill board, "#3 · top 2.5%" (the share of players
 * not below them), or "—" when the record came without it (not on the board yet, or the
 * boards did not answer in time). */
function rankOf(standing) {
  const place = standing?.rating;
  return place ? `#${fmtInt(place.rank)} · top ${Number((100 - place.percentile).toFixed(1))}%` : "—";
}

function modeCard(mode, rating, index, lines, standing) {
  const heading = `rating-${index}-h`;
  return el(
    "article", { class: "rating-card", "aria-labelledby": heading, "data-mode": mode },
    el("h3", { id: heading }, modeName(mode)),
    facts([
      ["Skill", fmtSkill(rating.skill), `skill:${mode}`],
      ["Mean ± uncertainty", fmtMuSigma(rating), `mu_sigma:${mode}`],
      ["Matches rated", fmtInt(rating.matches), `rated:${mode}`],
      ["Rank", rankOf(standing), `rank:${mode}`],
    ]),
    mode === OTHER ? null : el("p", {}, el("a", { href: `/leaderboards/${encodeURIComponent(mode)}?stat=rating` }, `${mode} leaderboard`)),
    chartOf(mode, index, lines, rating),
  );
}

/** The ratings section of ``stats`` (its cards drawn at once) and ``load()``, which reads
 * the history and draws each mode's chart. */
export function skills(playerId, stats) {
  const rated = Object.entries(stats.ratings ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const note = el("p", { id: "ratings-note", class: "muted" });
  const cards = el("div", { id: "rating-cards", class: "rating-cards" });
  const node = section("ratings", "Skill ratings", note, cards);
  const draw = (byMode) =>
    cards.replaceChildren(...rated.map(([mode, rating], i) =>
      modeCard(mode, rating, i, byMode ? (byMode.get(mode) ?? []) : null, stats.modes?.[mode]?.standing)));
  if (!rated.length) {
    note.textContent = "No rated match yet.";
    return { node, load: async () => {} };
  }
  note.textContent = "Skill is the rating's cautious estimate (mean − 3 × uncertainty). Loading the charts…";
  draw(null);
  async function load() {
    node.setAttribute("aria-busy", "true");
    try {
      const { lines, more } = await newestMatches(playerId);
      draw(ratedByMode(lines));
      note.textContent = "Skill is the rating's cautious estimate (mean − 3 × uncertainty). " +
        (more ? `Charts: the newest ${HISTORY_CAP} matches only.` : `Charts: all ${lines.length} matches.`) +
        " Voided matches are left out.";
    } catch (error) {
      note.textContent = `Could not load the rating history: ${error.message}`;
    } finally {
      node.removeAttribute("aria-busy");
    }
  }
  return { node, load };
}
