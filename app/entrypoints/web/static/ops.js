// The operator console (admin key): live counters from /metrics, the actor pools with
// each member's counters and a resize control, sagas by state, and dead letters with
// replay. Sections refresh themselves every few seconds, except one holding the keyboard
// focus (rebuilding it would take the focus away) and while the refresh is paused.
import {
  ApiError, call, el, facts, fmtInt, fmtTime, getJson, matchLink, playerLink, pollDelayMs,
  section, setStatus, startPage, table, worthRetrying,
} from "./api.js";

const REFRESH_MS = 5000;
const SAGA_STATES = ["accepted", "running", "recovering", "stuck", "compensating", "completed", "compensated"];
const SAGAS_SHOWN = 50;
const DEAD_LETTERS_SHOWN = 50;

// ---- /metrics ---------------------------------------------------------------------------

/** The samples of a Prometheus text exposition: [{name, labels, value}]. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const found = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!found) continue;
    const labels = {};
    for (const [, name, value] of (found[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[name] = value.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    samples.push({ name: found[1], labels, value: Number(found[3]) });
  }
  return samples;
}

/** The sum of ``name``'s samples whose labels include ``match``; null when it has none. */
function total(samples, name, match = {}) {
  const chosen = samples.filter(
    (s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v),
  );
  return chosen.length ? chosen.reduce((sum, s) => sum + s.value, 0) : null;
}

let previous = null; // {at, values}: the last counters, for the rates

function counters(samples) {
  const now = performance.now();
  const items = [];
  const rates = {};
  const add = (term, value, key, isCounter = false) => {
    if (value === null) return;
    let text = fmtInt(value);
    if (isCounter && previous?.values[key] !== undefined) {
      const rate = (value - previous.values[key]) / ((now - previous.at) / 1000);
      text += ` (${rate.toFixed(1)}/s)`;
    }
    if (isCounter) rates[key] = value;
    items.push([term, text, key]);
  };
  const ingest = "statsaga_ingest_duration_seconds_count";
  add("Matches accepted", total(samples, ingest, { outcome: "accepted" }), "ingest-accepted", true);
  add("Matches repeated", total(samples, ingest, { outcome: "repeated" }), "ingest-repeated", true);
  add("Matches rejected", total(samples, ingest, { outcome: "rejected" }), "ingest-rejected", true);
  add("Ingest failures", total(samples, ingest, { outcome: "failed" }), "ingest-failed", true);
  for (const s of samples.filter((x) => x.name === "statsaga_sagas_open")) {
    add(`Sagas ${s.labels.state}`, s.value, `open-${s.labels.state}`);
  }
  for (const s of samples.filter((x) => x.name === "statsaga_queue_messages")) {
    add(`${s.labels.queue}: ${s.labels.kind.replace("_", " ")}`, s.value, `queue-${s.labels.queue}-${s.labels.kind}`);
  }
  add("Grains active", total(samples, "statsaga_grains_active"), "grains-active");
  add("Grain activations", total(samples, "statsaga_grain_activations_total"), "grain-activations", true);
  // The worker's counters, when this process runs the worker too (statsaga run / dev).
  add("Sagas completed", total(samples, "statsaga_sagas_finished_total", { state: "completed" }), "finished-completed", true);
  add("Sagas compensated", total(samples, "statsaga_sagas_finished_total", { state: "compensated" }), "finished-compensated", true);
  add("Player retries", total(samples, "statsaga_player_retries_total"), "player-retries", true);
  add("Dead-lettered", total(samples, "statsaga_dead_letters_total"), "dead-lettered", true);
  previous = { at: now, values: rates };
  return section(
    "counters", "Live counters",
    el("p", {}, "From this API process's /metrics: ingest since it started (rate since the last refresh), and the deployment's open sagas, queues and grains."),
    facts(items),
  );
}

async function loadCounters() {
  const response = await fetch("/metrics", { cache: "no-store" });
  if (!response.ok) throw new ApiError(response.status, response.statusText);
  return counters(parseMetrics(await response.text()));
}

// ---- pools ------------------------------------------------------------------------------

const POOL_TITLES = {
  player: "Player shards (player pool)", game: "Game actors (game pool)", board: "Board actors (board pool)",
};
const POOL_ORDER = ["player", "game", "board"]; // the player pool first: it grows with the players
const modeNames = (modes) => Object.keys(modes ?? {}).sort().join(", ") || "—";
const node = (id) => (id ? String(id).slice(0, 12) : "—");
const count = (n, what) => `${n} ${what}${n === 1 ? "" : "s"}`;

function memberRows(pool, members) {
  return members.map((m) => {
    if (m.error) return [String(m.index), el("span", { class: "status-dead" }, `not answering: ${m.error}`)];
    const common = [String(m.index), node(m.node_id), String(m.pid), m.restarted ? "yes" : "no", m.placement_version, m.calls_in_flight];
    if (pool === "player") return [...common, m.active, m.activations, m.deactivations, m.calls, m.queued, m.failures];
    if (pool === "board") return [...common, modeNames(m.modes), m.rebuilding ? "yes" : "no", m.snapshots_saved, m.modes_handed_over];
    return [...common, m.saga_calls];
  });
}

function poolView(name, view) {
  const head = ["Member", "Node", "PID", "Restarted", "Placement", "In flight"];
  const own = {
    player: ["Active grains", "Activations", "Deactivations", "Grain calls", "Queued", "Failures"],
    board: ["Modes", "Rebuilding", "Snapshots saved", "Modes handed over"],
  };
  const columns = [...head, ...(own[name] ?? ["Saga calls"])];
  const input = el("input", {
    id: `size-${name}`, name: "size", type: "number", min: "1", inputmode: "numeric",
    required: true, value: String(view.size),
  });
  const form = el(
    "form", { class: "resize", "data-pool": name },
    el("label", { for: `size-${name}` }, `Members of the ${name} pool`),
    input,
    el("button", { type: "submit" }, `Resize the ${name} pool`),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    resize(name, Number(input.value), form);
  });
  return el(
    "div", { class: "pool", id: `pool-${name}` },
    el("h3", {}, POOL_TITLES[name] ?? name),
    form,
    table(count(view.size, "member"), columns, memberRows(name, view.members), `members-${name}`),
  );
}

const rank = (pool) => (POOL_ORDER.includes(pool) ? POOL_ORDER.indexOf(pool) : POOL_ORDER.length);

function pools(described) {
  const last = described.last_resize;
  return section(
    "pools", "Actor pools",
    el("p", {}, `Placement version ${described.version}, changed `, fmtTime(described.updated_at), "."),
    last
      ? el("p", { id: "last-resize" }, `Last resize: the ${last.pool} pool from ${last.from} to ${last.to} in ${last.seconds} s (placement version ${last.version}).`)
      : null,
    Object.entries(described.pools)
      .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
      .map(([name, view]) => poolView(name, view)),
  );
}

async function resize(pool, size, form) {
  const button = form.querySelector("button");
  if (button.getAttribute("aria-disabled") === "true") return;
  button.setAttribute("aria-disabled", "true");
  setStatus(`Resizing the ${pool} pool to ${size}…`);
  try {
    const described = await call("PUT", `/v1/admin/pools/${pool}`, { size });
    const last = described.last_resize;
    loads.pools = (loads.pools ?? 0) + 1; // newer than any load the timer has under way
    replace(pools(described), true);
    setStatus(last
      ? `Resized the ${pool} pool from ${last.from} to ${last.to} in ${last.seconds} s.`
      : `The ${pool} pool has ${size} members.`);
  } catch (error) {
    setStatus(`Could not resize the ${pool} pool: ${error.message}`, true);
  } finally {
    button.removeAttribute("aria-disabled");
  }
}

// ---- sagas ------------------------------------------------------------------------------

let sagaState = ""; // "": every unfinished saga

function playerCounts(players) {
  const parts = Object.entries(players).filter(([, n]) => n > 0).map(([status, n]) => `${status} ${n}`);
  return parts.length ? parts.join(", ") : "—";
}

function sagas(list, state) {
  const select = el(
    "select", { id: "saga-state" },
    el("option", { value: "" }, "unfinished (any open state)"),
    SAGA_STATES.map((s) => el("option", { value: s }, s)),
  );
  select.value = state;
  select.addEventListener("change", async () => {
    sagaState = select.value;
    setStatus(`Loading ${sagaState || "unfinished"} sagas…`);
    await refreshOne("sagas", true);
    setStatus(`Showing ${sagaState || "unfinished"} sagas.`);
  });
  const rows = list.map((s) => [
    matchLink(s.match_id),
    el("span", { class: `status-${s.state}` }, s.state),
    playerCounts(s.players),
    s.dead.length ? s.dead.join(", ") : "—",
    fmtTime(s.accepted_at),
    fmtTime(s.updated_at),
    s.state === "stuck"
      ? el("button", { type: "button", "data-redrive": s.match_id, "aria-label": `Re-drive match ${s.match_id}` }, "Re-drive")
      : "—",
  ]);
  const which = state || "unfinished";
  const view = section(
    "sagas", "Sagas",
    el("div", { class: "filter" }, el("label", { for: "saga-state" }, "Show sagas"), select),
    rows.length
      ? table(`${rows.length === SAGAS_SHOWN ? "The oldest " : ""}${count(rows.length, `${which} saga`)}, oldest first`,
        ["Match", "State", "Players", "Dead players", "Accepted", "Last change", "Action"], rows, "sagas-table")
      : el("p", { id: "sagas-none" }, `No ${which} sagas.`),
  );
  for (const button of view.querySelectorAll("button[data-redrive]")) {
    button.addEventListener("click", () => redrive(button.dataset.redrive));
  }
  return view;
}

async function loadSagas() {
  const state = sagaState; // the filter may change while the list loads
  const query = new URLSearchParams({ limit: String(SAGAS_SHOWN) });
  if (state) query.set("state", state);
  return sagas((await getJson(`/v1/admin/sagas?${query}`)).sagas, state);
}

async function redrive(matchId) {
  try {
    await call("POST", `/v1/admin/sagas/${encodeURIComponent(matchId)}/redrive`);
    setStatus(`Re-drive of match ${matchId} queued.`);
  } catch (error) {
    setStatus(`Could not re-drive match ${matchId}: ${error.message}`, true);
  }
  await refreshOne("sagas", true);
}

// ---- dead letters -----------------------------------------------------------------------

let lastReport = null; // the last replay's report, shown until the next one

function report() {
  if (!lastReport) return null;
  const lines = [
    ...lastReport.replayed.map((r) => `Replayed ${r.message_id} (${r.match_id ?? "no match"}): ${r.as}`),
    ...lastReport.dropped.map((r) => `Dropped ${r.message_id} (${r.match_id ?? "no match"}): ${r.why}`),
  ];
  return el("div", { id: "replay-report" },
    el("h3", {}, "Last replay"),
    lines.length ? el("ul", {}, lines.map((line) => el("li", {}, line))) : el("p", {}, "Nothing matched: no dead letter was taken."));
}

function deadLetters(list) {
  const rows = list.map((d) => [
    d.queue,
    d.match_id ? matchLink(d.match_id) : "—",
    d.player_id ? playerLink(d.player_id) : "—",
    d.reason ?? "—",
    d.description ? el("span", { class: "long" }, d.description) : "—",
    el("button", {
      type: "button", "data-replay": d.message_id,
      "aria-label": `Replay the dead letter of ${d.match_id ?? d.message_id}${d.player_id ? ` for ${d.player_id}` : ""}`,
    }, "Replay"),
  ]);
  const all = el("button", { type: "button", id: "replay-all", "aria-disabled": rows.length ? null : "true" }, "Replay all");
  const view = section(
    "deadletters", "Dead letters",
    el("p", {}, "A dead player's step re-drives its saga (fix the cause first); any other message goes back to its queue."),
    all,
    rows.length
      ? table(`${count(rows.length, "dead letter")}, oldest first`, ["Queue", "Match", "Player", "Reason", "Description", "Action"], rows, "deadletters-table")
      : el("p", { id: "deadletters-none" }, "No dead letters."),
    report(),
  );
  all.addEventListener("click", () => rows.length && replay(null));
  for (const button of view.querySelectorAll("button[data-replay]")) {
    button.addEventListener("click", () => replay([button.dataset.replay]));
  }
  return view;
}

async function loadDeadLetters() {
  return deadLetters((await getJson(`/v1/admin/deadletters?limit=${DEAD_LETTERS_SHOWN}`)).deadletters);
}

async function replay(messageIds) {
  setStatus(messageIds ? "Replaying the dead letter…" : "Replaying every dead letter…");
  try {
    lastReport = await call("POST", "/v1/admin/deadletters/replay", messageIds ? { message_ids: messageIds } : {});
    const { replayed, dropped } = lastReport;
    setStatus(`Replayed ${replayed.length} dead letter${replayed.length === 1 ? "" : "s"}, dropped ${dropped.length}.`);
  } catch (error) {
    setStatus(`Could not replay: ${error.message}`, true);
  }
  await refreshOne("deadletters", true);
  await refreshOne("sagas", false);
}

// ---- refreshing -------------------------------------------------------------------------

const LOADERS = { counters: loadCounters, pools: async () => pools(await getJson("/v1/admin/pools")), sagas: loadSagas, deadletters: loadDeadLetters };
const TITLES = { counters: "Live counters", pools: "Actor pools", sagas: "Sagas", deadletters: "Dead letters" };
let paused = false;
const loads = {}; // per section, the number of its latest load: an older one is dropped

/** Put ``fresh`` in the place of the section with its id; ``keepFocus``: the focused
 * control (found again by its id) keeps the focus. */
function replace(fresh, keepFocus) {
  const id = fresh.getAttribute("aria-labelledby");
  const old = document.querySelector(`section[aria-labelledby="${id}"]`);
  if (!old) return;
  const focused = old.contains(document.activeElement) ? document.activeElement.id : null;
  old.replaceWith(fresh);
  if (keepFocus && focused) document.getElementById(focused)?.focus();
}

/** Reload one section; returns the error that kept it from loading, if retrying may help. */
async function refreshOne(name, forced) {
  const old = document.querySelector(`section[aria-labelledby="${name}-h"]`);
  if (!forced && old?.contains(document.activeElement)) return null; // do not take the focus away
  const mine = (loads[name] = (loads[name] ?? 0) + 1);
  let fresh;
  let failed = null;
  try {
    fresh = await LOADERS[name]();
  } catch (error) {
    if (!(error instanceof ApiError) && !(error instanceof TypeError)) throw error;
    fresh = section(name, TITLES[name], el("p", { class: "status error" }, `Could not load: ${error.message}`));
    if (worthRetrying(error)) failed = error;
  }
  // A timer's load that a forced one overtook must not draw over it.
  if (mine === loads[name]) replace(fresh, true);
  return failed;
}

let failures = 0; // refreshes in a row in which a section failed: the console backs off
let nextMs = REFRESH_MS;

async function refreshAll(forced) {
  const errors = [];
  for (const name of Object.keys(LOADERS)) {
    const error = await refreshOne(name, forced);
    if (error) errors.push(error);
  }
  failures = errors.length ? failures + 1 : 0;
  nextMs = Math.max(pollDelayMs(REFRESH_MS, failures), ...errors.map((e) => pollDelayMs(REFRESH_MS, failures, e)));
  const when = failures
    ? `; the API did not answer every section: next refresh in ${nextMs / 1000} s.`
    : `; every ${REFRESH_MS / 1000} s.`;
  document.getElementById("refreshed").replaceChildren("Refreshed at ", fmtTime(new Date().toISOString()), paused ? " (paused)." : when);
}

function controls() {
  const pause = el("button", { type: "button", id: "pause", "aria-pressed": "false" }, "Pause refresh");
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume refresh" : "Pause refresh";
    if (!paused) refreshAll(false);
  });
  // Not a live region: a screen reader would announce every refresh.
  return el("div", { class: "refresh" }, pause, el("p", { id: "refreshed" }, "Loading…"));
}

async function main() {
  startPage("admin");
  const content = document.getElementById("content");
  content.replaceChildren(controls(), ...Object.entries(TITLES).map(([name, title]) => section(name, title, el("p", {}, "Loading…"))));
  // The key (if one is asked for) before anything else: then the sections load together.
  await getJson("/v1/admin/sagas?limit=1").catch(() => null);
  await refreshAll(true);
  setStatus("Console ready.");
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, paused ? REFRESH_MS : nextMs));
    if (!paused) await refreshAll(false);
  }
}

main();
