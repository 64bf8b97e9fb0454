// The live dashboard: stage board, event tail, order journey, throughput, consumer lag, dead letters.
// State lives here; frames come from socket.js; every seq is applied once.

import { LiveSocket } from "./socket.js";
import { sparkline, update as updateSpark } from "./sparkline.js";
import { setupTimeTravel } from "./time_travel.js";

const root = document.getElementById("dashboard");
const API = root.dataset.api.replace(/state$/, "");
const CSRF = root.querySelector("input[name=csrfmiddlewaretoken]").value;
// Without the dead-letter permission the server renders no action buttons; the rows get none either.
const CAN_ACT = document.getElementById("dead-letters").dataset.canAct === "true";
const STAGES = ["placed", "reserved", "packed", "dispatched", "delivered", "rejected", "cancelled"];
const FINAL = new Set(["delivered", "rejected", "cancelled"]);
const MAX_CARDS_SHOWN = 150; // per column in the DOM; the count shows them all
const TAIL_KEEP = 1000;
const TAIL_SHOWN = 250;
const SPARK_POINTS = 60;

const state = {
  lastSeq: null,
  skewMs: 0,
  cards: new Map(),
  stageCounts: {},
  tail: [],
  tailSeqs: new Set(),
  paused: false,
  missedWhilePaused: 0,
  skipped: 0, // events left out of the tail's frames while traffic was too fast to read
  counters: {},
  throughput: new Map(), // type -> [counts per second]
  lag: new Map(),
  deadLetters: new Map(),
  violations: new Map(), // order id -> card whose events contradict the saga
  selectedOrder: null,
  threshold: 30,
  replaying: false, // time travel shows a past board: live frames update the state, not the board
};

const $ = (sel, el = document) => el.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};
const shortType = (t) => (t || "").replace(/^conveyor\./, "").replace(/\.v\d+$/, "");
const shortId = (id) => (id || "").slice(0, 8);
const now = () => Date.now() + state.skewMs;

function fmtAge(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}`;
}
function fmtDelta(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return fmtAge(ms);
}
function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

// ------------------------------------------------------------------ connection

const conn = $("#conn");
const reconnectBtn = $("#reconnect");
function setConn(kind, text) {
  conn.dataset.state = kind;
  conn.textContent = text;
  reconnectBtn.hidden = kind !== "reconnecting";
}

// ------------------------------------------------------------------ board

const columns = Object.fromEntries(STAGES.map((s) => [s, root.querySelector(`.col[data-stage="${s}"]`)]));

function cardElement(card) {
  const button = el(
    "button",
    { type: "button", class: "card", "data-order-id": card.id, onclick: () => selectOrder(card.id) },
    el("span", { class: "card-id", text: shortId(card.id) }),
    el("span", { class: "card-age" }),
    el("span", { class: "card-meta" })
  );
  return el("li", {}, button);
}

function renderCard(card, animate) {
  if (state.replaying) return;
  let button = root.querySelector(`.card[data-order-id="${CSS.escape(card.id)}"]`);
  const column = columns[card.stage];
  if (!column) return;
  const list = $(".cards", column);
  if (!button) {
    const li = cardElement(card);
    list.prepend(li);
    button = li.firstChild;
    if (animate) flash(button);
    trimColumn(card.stage);
  } else if (button.closest(".col") !== column) {
    list.prepend(button.parentElement);
    if (animate) flash(button);
    trimColumn(card.stage);
  }
  const meta = [card.items ? `${card.items} item${card.items === 1 ? "" : "s"}` : null, card.total || null];
  $(".card-meta", button).textContent = meta.filter(Boolean).join(" · ") || `${card.events} events`;
  button.classList.toggle("selected", state.selectedOrder === card.id);
  refreshAge(button, card);
}

function flash(button) {
  button.classList.remove("arrived");
  void button.offsetWidth; // restart the animation
  button.classList.add("arrived");
}

function trimColumn(stage) {
  const list = $(".cards", columns[stage]);
  while (list.children.length > MAX_CARDS_SHOWN) list.lastElementChild.remove();
  renderCounts();
}

function refreshAge(button, card) {
  const age = now() - Date.parse(card.since);
  const stuck = !FINAL.has(card.stage) && age > state.threshold * 1000;
  button.classList.toggle("stuck", stuck);
  $(".card-age", button).textContent = fmtAge(age);
  button.setAttribute(
    "aria-label",
    `Order ${shortId(card.id)}, ${card.stage} for ${fmtAge(age)}${stuck ? ", stuck" : ""}. Show its journey.`
  );
}

function renderCounts() {
  if (state.replaying) return;
  for (const stage of STAGES) {
    const count = state.stageCounts[stage] ?? 0;
    $(`[data-count-for="${stage}"]`, columns[stage]).textContent = count;
    const shown = $(".cards", columns[stage]).children.length;
    const more = $(".more", columns[stage]);
    more.hidden = count <= shown;
    more.textContent = `+${count - shown} more (newest shown)`;
  }
}

function applyCards(cards, animate) {
  let violated = false;
  for (const card of cards) {
    const known = state.cards.get(card.id);
    if (known && known.seq > card.seq) continue;
    state.cards.set(card.id, card);
    renderCard(card, animate && (!known || known.stage !== card.stage));
    if (card.violation && !state.violations.has(card.id)) {
      state.violations.set(card.id, card);
      violated = true;
    }
  }
  if (violated) renderViolations();
}

function renderViolations() {
  const rows = $("#violation-rows");
  const cards = [...state.violations.values()].sort((a, b) => b.seq - a.seq);
  $("#violations-count").textContent = cards.length;
  $("#violations").classList.toggle("alert", cards.length > 0);
  if (!cards.length) {
    rows.replaceChildren(el("li", { class: "empty muted", text: "None: every order's events agree." }));
    return;
  }
  rows.replaceChildren(
    ...cards.map((card) =>
      el(
        "li",
        { "data-violation-order": card.id },
        el("button", { type: "button", class: "linklike", onclick: () => selectOrder(card.id), text: `order ${shortId(card.id)}` }),
        ` (${card.stage}): ${card.violation}`
      )
    )
  );
}

setInterval(() => {
  if (state.replaying) return;
  for (const button of root.querySelectorAll(".card[data-order-id]")) {
    const card = state.cards.get(button.dataset.orderId);
    if (card) refreshAge(button, card);
  }
}, 1000);

$("#stuck-threshold").addEventListener("change", (ev) => {
  const value = Number(ev.target.value);
  if (value > 0) state.threshold = value;
  try {
    localStorage.setItem("conveyor.stuckThreshold", String(state.threshold));
  } catch {}
});
try {
  const saved = Number(localStorage.getItem("conveyor.stuckThreshold"));
  if (saved > 0) state.threshold = $("#stuck-threshold").value = saved;
} catch {}

// The live board again, from the state the frames kept up to date while time travel showed the past.
function rebuildBoard() {
  for (const stage of STAGES) $(".cards", columns[stage]).replaceChildren();
  for (const card of [...state.cards.values()].sort((a, b) => a.seq - b.seq)) renderCard(card, false);
  renderCounts();
}

setupTimeTravel({
  root,
  columns,
  enter: () => {
    state.replaying = true;
  },
  leave: () => {
    state.replaying = false;
    rebuildBoard();
  },
});

// ------------------------------------------------------------------ event tail

const tailRows = $("#tail-rows");
const filtersForm = $("#tail-filters");
const pauseBtn = $("#pause");
const typeSelect = filtersForm.elements.type;

function filters() {
  const f = filtersForm.elements;
  return { app: f.app.value, type: f.type.value, order: f.order.value.trim().toLowerCase(), text: f.text.value.trim().toLowerCase() };
}

function matches(ev, f) {
  if (f.app) {
    if (f.app === "dead-letter" || f.app === "poison") {
      if (ev.kind !== f.app) return false;
    } else if (ev.app !== f.app) return false;
  }
  if (f.type && ev.type !== f.type) return false;
  if (f.order && ![ev.order, ev.subject, ev.corr].some((v) => (v || "").toLowerCase().includes(f.order))) return false;
  if (f.text) {
    const hay = [ev.type, ev.subject, ev.source, ev.topic, ev.id, ev.order, ev.kind].join(" ").toLowerCase();
    if (!hay.includes(f.text)) return false;
  }
  return true;
}

function tailRow(ev) {
  return el(
    "tr",
    { class: ev.kind !== "event" ? ev.kind : null, "data-seq": ev.seq },
    el("td", { class: "num", text: ev.seq }),
    el("td", {}, el("button", { type: "button", class: "linklike", text: shortType(ev.type) || ev.kind, onclick: () => showEvent(ev.seq), title: ev.type })),
    el("td", {}, ev.order && ev.order === ev.subject
      ? el("button", { type: "button", class: "linklike", text: shortId(ev.subject), title: ev.subject, onclick: () => selectOrder(ev.order) })
      : el("span", { text: ev.subject, title: ev.subject })),
    el("td", { text: ev.app || ev.source }),
    el("td", { text: fmtTime(ev.time), title: ev.time }),
    el("td", { text: ev.topic }),
    el("td", { class: "num", text: ev.partition }),
    el("td", { class: "num", text: ev.offset })
  );
}

function addEvents(events) {
  const fresh = events.filter((e) => !state.tailSeqs.has(e.seq));
  if (!fresh.length) return;
  for (const e of fresh) {
    state.tail.push(e);
    state.tailSeqs.add(e.seq);
  }
  state.tail.sort((a, b) => a.seq - b.seq);
  while (state.tail.length > TAIL_KEEP) state.tailSeqs.delete(state.tail.shift().seq);
  if (state.paused) {
    state.missedWhilePaused += fresh.length;
    $("#tail-status").textContent = `${state.missedWhilePaused} new events while paused`;
    return;
  }
  const f = filters();
  const rows = fresh.filter((e) => matches(e, f)).sort((a, b) => a.seq - b.seq);
  for (const e of rows) tailRows.prepend(tailRow(e));
  while (tailRows.children.length > TAIL_SHOWN) tailRows.lastElementChild.remove();
}

function noteSkipped(count) {
  state.skipped += count;
  const note = $("#tail-skipped");
  note.hidden = false;
  $("span", note).textContent = `${state.skipped.toLocaleString()} events were too fast for the tail, which shows the newest of each moment.`;
}

function renderTail() {
  const f = filters();
  const rows = [];
  for (let i = state.tail.length - 1; i >= 0 && rows.length < TAIL_SHOWN; i--) {
    if (matches(state.tail[i], f)) rows.push(tailRow(state.tail[i]));
  }
  tailRows.replaceChildren(...rows);
  $("#tail-status").textContent = rows.length ? "" : "No events match.";
}

pauseBtn.addEventListener("click", () => {
  state.paused = !state.paused;
  pauseBtn.setAttribute("aria-pressed", String(state.paused));
  pauseBtn.textContent = state.paused ? "Resume" : "Pause";
  if (!state.paused) {
    state.missedWhilePaused = 0;
    renderTail();
  } else {
    $("#tail-status").textContent = "Paused";
  }
});
filtersForm.addEventListener("input", () => renderTail());
filtersForm.addEventListener("submit", (ev) => ev.preventDefault());

function refreshTypeOptions() {
  const types = Object.keys(state.counters).sort();
  const current = typeSelect.value;
  const have = new Set([...typeSelect.options].map((o) => o.value));
  if (types.every((t) => have.has(t))) return;
  typeSelect.replaceChildren(el("option", { value: "", text: "all" }), ...types.map((t) => el("option", { value: t, text: shortType(t) })));
  typeSelect.value = current;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  return response.json();
}

async function showEvent(seq) {
  const panel = $("#event-detail");
  const body = $("#detail-body");
  panel.hidden = false;
  body.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  try {
    const ev = await getJSON(`${API}events/${seq}`);
    $("#detail-title").textContent = `#${ev.seq} ${ev.type || ev.kind}`;
    const headers = el("table", {}, ...Object.entries(ev.headers).sort().map(([k, v]) => el("tr", {}, el("th", { scope: "row", text: k }), el("td", { text: v }))));
    body.replaceChildren(
      el("p", { class: "where", text: `${ev.topic} [${ev.partition}] @ ${ev.offset} · ${ev.time || ""}` }),
      el("h4", { text: "Headers" }),
      headers,
      el("h4", { text: "Payload" }),
      el("pre", { text: ev.payload })
    );
  } catch (err) {
    body.replaceChildren(el("p", { text: `Could not load the event: ${err.message}` }));
  }
  panel.focus();
}
$("#detail-close").addEventListener("click", () => {
  $("#event-detail").hidden = true;
});

// ------------------------------------------------------------------ journey

let journeyTimer = null;

async function selectOrder(orderId) {
  state.selectedOrder = orderId;
  for (const b of root.querySelectorAll(".card.selected")) b.classList.remove("selected");
  root.querySelector(`.card[data-order-id="${CSS.escape(orderId)}"]`)?.classList.add("selected");
  await renderJourney(orderId);
  $("#journey").focus();
}

async function renderJourney(orderId) {
  const body = $("#journey-body");
  let data;
  try {
    data = await getJSON(`${API}orders/${encodeURIComponent(orderId)}`);
  } catch (err) {
    body.replaceChildren(el("p", { text: `Could not load the journey: ${err.message}` }));
    return;
  }
  if (state.selectedOrder !== orderId) return;
  $("#journey-hint").textContent = `Order ${orderId}${data.order ? ` — now ${data.order.stage}` : ""}`;
  const byId = new Map(data.events.map((e, i) => [e.id, { e, i }]));
  let prev = null;
  const items = data.events.map((e, i) => {
    const gap = prev && e.time && prev.time ? Date.parse(e.time) - Date.parse(prev.time) : null;
    const cause = e.cause ? byId.get(e.cause) : null;
    prev = e;
    return el(
      "li",
      { id: `j-${e.seq}`, class: e.kind !== "event" ? e.kind : null },
      i === 0 ? null : el("span", { class: "gap", text: gap === null ? "" : `+${fmtDelta(gap)}` }),
      el("button", { type: "button", class: "linklike step-type", text: shortType(e.type) || e.kind, onclick: () => showEvent(e.seq) }),
      " ",
      el("span", { class: "muted", text: `${e.app} · ${fmtTime(e.time)}` }),
      el("div", { class: "where", text: `${e.topic} [${e.partition}] @ ${e.offset}` }),
      e.cause
        ? el("div", { class: "cause" }, "↳ caused by ", cause ? el("a", { href: `#j-${cause.e.seq}`, text: `${shortType(cause.e.type)} (#${cause.e.seq})` }) : el("span", { class: "muted", text: shortId(e.cause) }))
        : el("div", { class: "cause muted", text: i === 0 ? "starts the saga" : "no causation id" })
    );
  });
  body.replaceChildren(items.length ? el("ol", { class: "journey" }, ...items) : el("p", { class: "muted", text: "No events yet." }));
}

function journeyTouched(events, cards) {
  if (!state.selectedOrder) return;
  const id = state.selectedOrder;
  if (events.some((e) => e.order === id || e.corr === id) || cards.some((c) => c.id === id)) {
    clearTimeout(journeyTimer);
    journeyTimer = setTimeout(() => renderJourney(id), 250);
  }
}

// ------------------------------------------------------------------ throughput and lag

const throughputList = $("#throughput");
const lagList = $("#lag");

function sparkRow(list, key, label) {
  let row = list.querySelector(`li[data-key="${CSS.escape(key)}"]`);
  if (!row) {
    list.querySelector("li.muted")?.remove();
    row = el("li", { "data-key": key }, el("span", { class: "name", text: label, title: key }), el("span", { class: "value" }), sparkline([], { label }));
    const rows = [...list.children];
    const after = rows.find((r) => r.dataset.key > key);
    list.insertBefore(row, after || null);
  }
  return row;
}

function renderThroughput() {
  for (const [type, values] of state.throughput) {
    const row = sparkRow(throughputList, type, shortType(type));
    const total = state.counters[type]?.count ?? 0;
    $(".value", row).textContent = `${values[values.length - 1] ?? 0}/s · ${total}`;
    updateSpark($("svg", row), values);
  }
}

function pushThroughput(points) {
  for (const [, rates] of points) {
    for (const type of Object.keys(rates)) if (!state.throughput.has(type)) state.throughput.set(type, new Array(SPARK_POINTS).fill(0));
    for (const [type, values] of state.throughput) {
      values.push(rates[type] || 0);
      while (values.length > SPARK_POINTS) values.shift();
    }
  }
  renderThroughput();
}

function setThroughputHistory(history) {
  if (!history) return;
  state.throughput = new Map(Object.entries(history.series).map(([t, v]) => [t, v.slice(-SPARK_POINTS)]));
  for (const type of Object.keys(state.counters)) if (!state.throughput.has(type)) state.throughput.set(type, new Array(SPARK_POINTS).fill(0));
  renderThroughput();
}

function renderLag(groups) {
  for (const g of groups) {
    state.lag.set(g.group, g);
    const row = sparkRow(lagList, g.group, g.group.replace(/^conveyor\./, ""));
    $(".value", row).textContent = `${g.lag} · ${g.seconds_behind}s`;
    row.classList.toggle("behind", g.seconds_behind > state.threshold);
    row.title = (g.partitions || []).map(([t, p, c, e]) => `${t}[${p}] ${c}/${e}`).join("\n");
    updateSpark($("svg", row), (g.history || []).map((h) => h[1]).slice(-SPARK_POINTS));
  }
}

// ------------------------------------------------------------------ dead letters

const dlRows = $("#dl-rows");
const dlStatus = $("#dl-status");

function renderDeadLetters() {
  const letters = [...state.deadLetters.values()].sort((a, b) => b.seq - a.seq);
  $("#dl-count").textContent = letters.filter((d) => d.status === "new").length;
  if (!letters.length) {
    dlRows.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 8, class: "muted", text: "No dead letters." })));
    return;
  }
  const checked = new Set([...dlRows.querySelectorAll("input[type=checkbox]:checked")].map((c) => Number(c.value)));
  dlRows.replaceChildren(
    ...letters.map((d) =>
      el(
        "tr",
        { "data-dead-letter-id": d.id, "data-status": d.status },
        el("td", {}, el("input", { type: "checkbox", value: d.id, checked: checked.has(d.id), disabled: d.status === "discarded", "aria-label": `Select dead letter ${d.id}` })),
        el("td", { class: `status-${d.status}`, text: d.status + (d.by ? ` by ${d.by}` : "") + (d.at ? ` ${fmtTime(d.at)}` : "") }),
        el("td", { class: "err" }, el("strong", { text: d.reason || "?" }), el("div", { class: "muted", text: d.error })),
        el("td", { text: `${d.topic} [${d.partition ?? "?"}] @ ${d.offset ?? "?"}` }),
        el("td", { text: (d.group || "").replace(/^conveyor\./, "") }),
        el("td", {}, el("div", { text: shortType(d.type) }), el("details", {}, el("summary", { text: "payload" }), el("pre", { text: d.payload }))),
        el("td", { text: fmtTime(d.dead_at), title: d.dead_at }),
        CAN_ACT
          ? el(
              "td",
              {},
              el("button", { type: "button", class: "small", disabled: d.status === "discarded", onclick: () => act("replay", [d.id]), text: d.status === "replayed" ? "Replay again" : "Replay" }),
              " ",
              el("button", { type: "button", class: "small", disabled: d.status !== "new", onclick: () => act("discard", [d.id]), text: "Discard" })
            )
          : el("td", { class: "muted", text: "–" })
      )
    )
  );
}

function applyDeadLetters(rows, replace) {
  if (replace) state.deadLetters.clear();
  for (const d of rows) state.deadLetters.set(d.id, d);
  renderDeadLetters();
}

async function act(action, ids) {
  if (!ids.length) {
    dlStatus.textContent = "Select dead letters first.";
    return;
  }
  dlStatus.textContent = `${action === "replay" ? "Replaying" : "Discarding"} ${ids.length}…`;
  try {
    const response = await fetch(`${API}dead-letters/${action}`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": CSRF, Accept: "application/json" },
      body: JSON.stringify({ ids }),
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    applyDeadLetters(data.dead_letters, false);
    const done = (data.replayed || data.discarded || []).length;
    dlStatus.textContent = `${action === "replay" ? "Replayed" : "Discarded"} ${done} of ${ids.length}.`;
  } catch (err) {
    dlStatus.textContent = `Failed: ${err.message}`;
  }
}

const selectedIds = () => [...dlRows.querySelectorAll("input[type=checkbox]:checked")].map((c) => Number(c.value));
if (CAN_ACT) {
  $("#dl-replay-selected").addEventListener("click", () => act("replay", selectedIds()));
  $("#dl-discard-selected").addEventListener("click", () => act("discard", selectedIds()));
}
$("#dl-all").addEventListener("change", (ev) => {
  for (const box of dlRows.querySelectorAll("input[type=checkbox]:not(:disabled)")) {
    box.checked = ev.target.checked && state.deadLetters.get(Number(box.value))?.status === "new";
  }
});

// ------------------------------------------------------------------ frames

function setSeq(seq) {
  state.lastSeq = seq;
  $("#last-seq").textContent = seq ?? "–";
}

function applyCommon(frame) {
  if (frame.now) state.skewMs = Date.parse(frame.now) - Date.now();
  if (frame.stage_counts) state.stageCounts = frame.stage_counts;
  if (frame.counters) {
    state.counters = { ...state.counters, ...frame.counters };
    refreshTypeOptions();
  }
}

function onFrame(frame) {
  switch (frame.kind) {
    case "snapshot":
      state.cards.clear();
      state.violations.clear();
      renderViolations();
      if (!state.replaying) for (const stage of STAGES) $(".cards", columns[stage]).replaceChildren();
      state.tail = [];
      state.tailSeqs.clear();
      tailRows.replaceChildren();
      state.counters = {};
      applyCommon(frame);
      applyCards(frame.cards, false);
      addEvents(frame.events);
      applyDeadLetters(frame.dead_letters, true);
      setThroughputHistory(frame.throughput);
      renderLag(frame.lag);
      renderCounts();
      setSeq(frame.to_seq);
      break;
    case "catchup":
      applyCommon(frame);
      applyCards(frame.cards, true);
      addEvents(frame.events);
      applyDeadLetters(frame.dead_letters, true);
      renderLag(frame.lag);
      renderCounts();
      renderThroughput();
      setSeq(Math.max(state.lastSeq ?? 0, frame.to_seq));
      journeyTouched(frame.events, frame.cards);
      break;
    case "batch":
      applyCommon(frame);
      applyCards(frame.cards, true);
      if (frame.dead_letters?.length) applyDeadLetters(frame.dead_letters, false);
      renderCounts();
      if (!frame.partial) {
        if (frame.dropped > 0) noteSkipped(frame.dropped);
        addEvents(frame.events);
        setSeq(Math.max(state.lastSeq ?? 0, frame.to_seq));
      }
      journeyTouched(frame.events, frame.cards);
      break;
    case "metrics":
      pushThroughput(frame.points);
      break;
    case "lag":
      renderLag(frame.groups);
      break;
    case "dead_letters":
      applyDeadLetters(frame.dead_letters, false);
      break;
    default:
      break;
  }
}

const socket = new LiveSocket(root.dataset.wsPath, { onFrame, onState: setConn, lastSeq: () => state.lastSeq });
reconnectBtn.addEventListener("click", () => socket.reconnectNow());
socket.connect();
window.conveyorDashboard = { state, socket }; // for debugging in the console

// `/dashboard/?order=<id>` (the event viewer links here) opens that order's journey.
const linkedOrder = new URLSearchParams(location.search).get("order");
if (linkedOrder) selectOrder(linkedOrder);
