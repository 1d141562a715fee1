// Shared by the pages: reading the JSON API with the key kept in session storage,
// building DOM without innerHTML (so data can never become markup), and formatting.

const KEY = "statsaga.apiKey";
export const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** An error answer of the API: its status, the detail it gave, and the seconds its
 * ``Retry-After`` asked for (null when it sent none). */
export class ApiError extends Error {
  constructor(status, detail, retryAfterS = null) {
    super(detail);
    this.status = status;
    this.retryAfterS = retryAfterS;
  }
}

/** Whether polling should go on after ``error``: the API is overloaded (429) or failing
 * (5xx), or the request never got an answer (network down: fetch throws a TypeError). */
export function worthRetrying(error) {
  return error instanceof ApiError ? error.status === 429 || error.status >= 500 : error instanceof TypeError;
}

/** The wait before the next poll of a page refreshing every ``baseMs``, after ``failures``
 * failed polls in a row: doubling from twice ``baseMs``, at most a minute, and never less
 * than a 429's ``Retry-After`` (a polling page must not pile on an API in trouble). */
export function pollDelayMs(baseMs, failures, error = null) {
  const delay = failures === 0 ? baseMs : Math.min(60_000, baseMs * 2 ** failures);
  const asked = error instanceof ApiError && error.retryAfterS ? error.retryAfterS * 1000 : 0;
  return Math.max(delay, asked);
}

let asking = null; // one key form for every request that got a 401 at once
let role = "read"; // the role this page's reads need, named when a key is asked for

function askForKey(why) {
  if (asking) return asking;
  const form = document.getElementById("key-form");
  const input = document.getElementById("key-input");
  document.getElementById("key-why").textContent = why;
  form.hidden = false;
  setStatus("An API key is needed to read this page.");
  input.focus();
  asking = new Promise((resolve) => {
    form.addEventListener("submit", function onSubmit(event) {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY, key);
      input.value = "";
      form.hidden = true;
      form.removeEventListener("submit", onSubmit);
      asking = null;
      setStatus("Loading…");
      resolve();
    });
  });
  return asking;
}

/** What an error answer says: its ``detail``, or each invalid field and why. */
function detailOf(body, fallback) {
  const detail = body?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((e) => `${(e.loc ?? []).filter((part) => part !== "body").join(".")}: ${e.msg}`).join("; ");
  }
  return fallback;
}

/** ``method`` ``path`` with ``body`` as JSON and ``extra`` headers: the response and its
 * JSON (null for a 304); asks for a key (and tries again) while the API answers 401 or
 * 403, throws an ``ApiError`` for any other error answer. */
async function send(method, path, body, extra = {}) {
  for (;;) {
    const key = sessionStorage.getItem(KEY);
    const headers = { Accept: "application/json", ...extra };
    if (key) headers.Authorization = `Bearer ${key}`;
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 304) return { response, answer: null };
    const answer = await response.json().catch(() => null);
    if (response.ok) return { response, answer };
    const detail = detailOf(answer, response.statusText);
    if (response.status === 401 || response.status === 403) {
      sessionStorage.removeItem(KEY);
      await askForKey(key ? `The API refused that key: ${detail}.` : `This page needs an API key with the ${role} role.`);
      continue;
    }
    const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
    throw new ApiError(response.status, detail, Number.isNaN(retryAfter) ? null : retryAfter);
  }
}

/** ``method`` ``path`` with ``body`` as JSON, answered as JSON (see ``send``). */
export const call = async (method, path, body) => (await send(method, path, body)).answer;

/** GET ``path`` as JSON (see ``send``). */
export const getJson = (path) => call("GET", path);

/** GET ``path`` as ``{etag, body}``, conditional on ``previous`` (the last answer): when
 * the resource is unchanged (304, no body sent) ``previous`` itself comes back. */
export async function getFresh(path, previous = null) {
  const extra = previous?.etag ? { "If-None-Match": previous.etag } : {};
  const { response, answer } = await send("GET", path, undefined, extra);
  if (response.status === 304 && previous) return previous;
  return { etag: response.headers.get("ETag"), body: answer };
}

/** Say ``text`` in the page's polite live region. */
export function setStatus(text, isError = false) {
  const status = document.getElementById("status");
  // Unchanged text is not set again: a live region may announce every write.
  if (status.textContent !== text) status.textContent = text;
  status.classList.toggle("error", isError);
}

/** An element with attributes (``class``, ``dataset`` keys as ``data-*``) and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A captioned table in a scrolling wrapper; ``head`` names the columns, row cells are
 * strings, numbers or nodes; the first cell of a row is its header. */
export function table(caption, head, rows, id) {
  const thead = el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h))));
  const tbody = el(
    "tbody",
    {},
    rows.map((cells) =>
      el(
        "tr",
        {},
        cells.map((cell, i) =>
          el(i === 0 ? "th" : "td", { scope: i === 0 ? "row" : null, class: typeof cell === "number" ? "num" : null }, typeof cell === "number" ? fmtInt(cell) : cell),
        ),
      ),
    ),
  );
  // A scrolling region must be focusable to be scrolled with the keyboard.
  return el(
    "div",
    { class: "scroll", role: "region", tabindex: "0", "aria-labelledby": `${id}-caption`, id },
    el("table", {}, el("caption", { id: `${id}-caption` }, caption), thead, tbody),
  );
}

/** A section with its heading. */
export function section(id, heading, ...children) {
  return el("section", { "aria-labelledby": `${id}-h` }, el("h2", { id: `${id}-h` }, heading), ...children);
}

/** A description list of [term, value, key] triples; ``key`` becomes ``data-stat``. */
export function facts(items) {
  return el(
    "dl",
    { class: "facts" },
    items.map(([term, value, key]) =>
      el("div", {}, el("dt", {}, term), el("dd", { "data-stat": key }, value)),
    ),
  );
}

const INT = new Intl.NumberFormat("en-US");
export const fmtInt = (n) => INT.format(n);
export const fmtRatio = (x) => x.toFixed(2);
export const fmtPercent = (x) => `${(x * 100).toFixed(1)}%`;
export const fmtSeconds = (s) => `${s.toFixed(3)} s`;

/** A date-time as a <time> with the ISO value kept machine-readable. */
export function fmtTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  const text = Number.isNaN(date.getTime()) ? iso : date.toISOString().replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC");
  return el("time", { datetime: iso }, text);
}

/** A section paged over an API continuation token (the match history, a leaderboard):
 * ``load(token)`` fetches a page (``token`` null for the first), ``draw(page, index)``
 * returns its node and the status line to announce, ``failed(error)`` the line for an
 * error. Going back re-reads a kept token. ``back`` and ``forward`` are the buttons'
 * ``{ id, text }``. Returns the section's node and ``first()``, which shows page one. */
export function tokenPager({ id, heading, label, back, forward, load, draw, failed }) {
  const tokens = [null]; // tokens[i] fetches page i
  let index = 0;
  const holder = el("div", { id: `${id}-page` });
  const where = el("p", { id: `${id}-where`, class: "pager-where" });
  const prev = el("button", { type: "button", id: back.id }, back.text);
  const next = el("button", { type: "button", id: forward.id }, forward.text);
  const nav = el("nav", { class: "pager", "aria-label": label }, prev, where, next);

  // aria-disabled, not disabled: a disabled button drops the keyboard focus, and the
  // next Tab would start again from the top of the page.
  let busy = false;
  const usable = (button, ok) => button.setAttribute("aria-disabled", String(!ok));
  async function show(target) {
    if (busy || target < 0 || (target > 0 && !tokens[target])) return;
    busy = true;
    holder.setAttribute("aria-busy", "true");
    try {
      const page = await load(tokens[target]);
      index = target;
      tokens[index + 1] = page.continuation;
      const [node, status] = draw(page, index);
      holder.replaceChildren(node);
      where.textContent = `Page ${index + 1}${page.continuation ? "" : " (last)"}`;
      setStatus(status);
    } catch (error) {
      setStatus(failed(error), true);
    } finally {
      busy = false;
      holder.removeAttribute("aria-busy");
      usable(prev, index > 0);
      usable(next, Boolean(tokens[index + 1]));
    }
  }
  prev.addEventListener("click", () => show(index - 1));
  next.addEventListener("click", () => show(index + 1));
  return { node: section(id, heading, holder, nav), first: () => show(0) };
}

export const playerLink = (id) => el("a", { href: `/players/${encodeURIComponent(id)}` }, id);
export const matchLink = (id) => el("a", { href: `/matches/${encodeURIComponent(id)}` }, id);

/** The id in the page's path (``/players/{id}``), if it is a valid id. */
function idFromPath() {
  const last = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  return ID_RE.test(last) ? last : null;
}

/** The header's player lookup: opens the player's page. */
function installLookup() {
  const form = document.getElementById("lookup");
  const input = document.getElementById("lookup-id");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = input.value.trim();
    if (!ID_RE.test(id)) {
      input.setCustomValidity("1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit");
      input.reportValidity();
      return;
    }
    location.assign(`/players/${encodeURIComponent(id)}`);
  });
  input.addEventListener("input", () => input.setCustomValidity(""));
}

/** Starts a page whose API calls need ``needs`` ("read" or "admin"): the header's lookup. */
export function startPage(needs = "read") {
  role = needs;
  installLookup();
}

/** Starts a ``kind`` page ("Player", "Match"): the header's lookup, then the id in the
 * path, named in the title and the heading; null, said in the status, when the id is not
 * valid. */
export function openPage(kind) {
  startPage();
  const id = idFromPath();
  if (!id) {
    setStatus(`This is not a valid ${kind.toLowerCase()} id.`, true);
    return null;
  }
  document.title = `${id} - ${kind} - statsaga`;
  document.getElementById("title").textContent = `${kind} ${id}`;
  return id;
}
