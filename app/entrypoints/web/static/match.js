// The match page: what was played, the teams, each player's line with their skill before
// and after and the saga's progress for them, and the saga log as a timeline (refreshed
// while it runs).
import {
  ApiError, el, facts, fmtSeconds, fmtTime, getFresh, openPage, playerLink, pollDelayMs,
  section, setStatus, table, worthRetrying,
} from "./api.js";
import { ratingMove } from "./rating.js";

const RUNNING = new Set(["accepted", "running", "recovering", "compensating"]);
const REFRESH_MS = 2000;

// Each log entry as a short label (shown as text, never by colour alone) and a sentence.
const STEPS = {
  SagaStarted: (e) => ["started", `Saga started: fan-out to ${e.player_ids.length} players (${e.player_ids.join(", ")})`],
  PlayerApplied: (e) => ["applied", `${e.player_id}: update applied${e.already ? " (the record already had this match)" : ""}`],
  PlayerFailed: (e) => ["failed", `${e.player_id}: update failed (${e.transient ? "transient, will retry" : "permanent"}): ${e.error}`],
  RetryScheduled: (e) => ["retry", `${e.player_id}: retry ${e.attempt} scheduled after a back-off of ${fmtSeconds(e.delay_s)}`],
  PlayerDeadLettered: (e) => ["dead letter", `${e.player_id}: dead-lettered, waiting for an operator: ${e.reason}`],
  SagaCompleted: () => ["completed", "Saga completed: every player's record includes the match"],
  SagaStuck: (e) => ["stuck", `Saga stuck: dead-lettered players ${e.dead.join(", ")}`],
  SagaRedriven: () => ["redriven", "Saga re-driven by an operator: dead players tried again"],
  CompensationStarted: (e) => ["compensating", `Compensation started${e.reason ? `: ${e.reason}` : ""}`],
  PlayerCompensated: (e) => ["compensated", `${e.player_id}: ${e.reverted ? "match reverted from the record" : "nothing to revert"}`],
  SagaCompensated: () => ["compensated", "Saga compensated: no record includes the match"],
};

function step(entry) {
  const describe = STEPS[entry.type];
  const [label, text] = describe
    ? describe(entry)
    : [entry.type, JSON.stringify(entry)];
  return el(
    "li",
    { class: `step step-${label.replace(/\s+/g, "-")}`, "data-type": entry.type },
    el("span", { class: "offset" }, `+${fmtSeconds(entry.offset_s)}`),
    " ",
    el("span", { class: "tag" }, label),
    " ",
    el("span", { class: "what" }, text),
    " ",
    fmtTime(entry.at),
  );
}

function summary(match) {
  const ttc = match.time_to_consistency_s;
  return section(
    "summary", "Summary",
    facts([
      ["Mode", match.mode, "mode"],
      ["Map", match.map, "map"],
      ["Started", fmtTime(match.started_at), "started_at"],
      ["Ended", fmtTime(match.ended_at), "ended_at"],
      ["Accepted", fmtTime(match.accepted_at), "accepted_at"],
      ["Saga state", match.state, "state"],
      ["Finished", fmtTime(match.finished_at), "finished_at"],
      ["Time to consistency", ttc === null ? "not yet consistent" : fmtSeconds(ttc), "time_to_consistency"],
    ]),
  );
}

function teams(match) {
  const byTeam = (a, b) => (a.team ?? "").localeCompare(b.team ?? "");
  const players = [...match.players].sort(byTeam);
  return [
    section("teams", "Teams",
      match.teams.length
        ? table("Teams and their totals", ["Team", "Outcome", "Players", "Score", "Kills", "Deaths", "Assists"],
          match.teams.map((t) => [t.team, t.outcome, t.players.length, t.score, t.kills, t.deaths, t.assists]),
          "teams-table")
        : el("p", {}, "Free for all: no teams.")),
    section("lines", "Players",
      table("Each player's line and saga status",
        ["Player", "Team", "Outcome", "Skill: before → after (change)", "Score", "Kills", "Deaths", "Assists", "Saga status", "Failed attempts", "Last error"],
        players.map((p) => [
          playerLink(p.player_id), p.team ?? "—", p.outcome, ratingMove(p.rating), p.counters.score ?? 0,
          p.counters.kills ?? 0, p.counters.deaths ?? 0, p.counters.assists ?? 0,
          el("span", { class: `status-${p.status}` }, p.status), p.attempts, p.error ? el("span", { class: "long" }, p.error) : "—",
        ]),
        "players-table")),
  ];
}

function timeline(match) {
  return section(
    "timeline", "Saga timeline",
    el("p", {}, "Seconds since the match was accepted, oldest first."),
    el("ol", { class: "timeline", id: "timeline-list" }, match.log.map(step)),
  );
}

let last = null; // the last answer: polls send its ETag, and an unchanged match is a 304

async function load(matchId, content) {
  const previous = last;
  last = await getFresh(`/v1/matches/${encodeURIComponent(matchId)}`, previous);
  const match = last.body;
  if (last === previous) return match;
  // Keep a focused control focused across a refresh: re-render only what changed.
  const sections = [summary(match), ...teams(match), timeline(match)];
  if (content.childElementCount === sections.length) {
    sections.forEach((fresh, i) => {
      const old = content.children[i];
      if (!old.contains(document.activeElement) && old.textContent !== fresh.textContent) old.replaceWith(fresh);
    });
  } else {
    content.replaceChildren(...sections);
  }
  return match;
}

async function main() {
  const matchId = openPage("Match");
  if (!matchId) return;
  const content = document.getElementById("content");
  let failures = 0; // failed reads in a row: the page backs off while the API is in trouble
  for (;;) {
    let delay = REFRESH_MS;
    try {
      const match = await load(matchId, content);
      failures = 0;
      if (!RUNNING.has(match.state)) {
        setStatus(`Saga ${match.state}.`);
        return;
      }
      setStatus(`Saga ${match.state}: this page refreshes every ${REFRESH_MS / 1000} seconds.`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        setStatus(`No such match: ${error.message}.`, true);
        return;
      }
      const text = `Could not load the match: ${error.message}`;
      if (!worthRetrying(error)) {
        setStatus(text, true);
        return;
      }
      failures += 1;
      delay = pollDelayMs(REFRESH_MS, failures, error);
      setStatus(`${text}. Trying again in ${delay / 1000} seconds.`, true);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

main();
