// The event viewer's pages: live topic counts, a streamed search with progress and cancel, copy as JSON,
// copy link, lag trends, the service map's rates. Each part runs only on the page that has its elements.
import { sparkline } from "./sparkline.js";

const $ = (sel, el = document) => el.querySelector(sel);

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = Object.assign(document.createElement("textarea"), { value: text });
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  if (button) {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = label), 1200);
  }
}

document.addEventListener("click", (ev) => {
  const copy = ev.target.closest(".copy-json");
  if (copy) copyText(copy.dataset.json, copy);
  if (ev.target.id === "copy-link") copyText(location.href, ev.target);
});

// ------------------------------------------------------------------ topics: live counts
$("#show-internal")?.addEventListener("change", (ev) => ev.target.form.submit());
const countsStatus = $("#counts-status");
if (countsStatus) {
  const url = countsStatus.dataset.countsUrl;
  const refresh = async () => {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || response.statusText);
      for (const [name, counts] of Object.entries(body.topics)) {
        const cell = document.querySelector(`tr[data-topic="${CSS.escape(name)}"] [data-messages]`);
        if (cell && cell.textContent !== String(counts.messages)) cell.textContent = counts.messages;
      }
      countsStatus.textContent = `counts as of ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      countsStatus.textContent = `counts not refreshed: ${err.message}`;
    }
  };
  setInterval(refresh, 3000);
}

// ------------------------------------------------------------------ messages: streamed search
const search = $("#search");
if (search) {
  const status = $("#search-status");
  const progress = $("#search-progress");
  const list = $("#messages");
  const cancelBtn = $("#search-cancel");
  const resume = $("#search-resume");
  const controller = new AbortController();
  let matches = 0;
  const setStatus = (state, text) => {
    status.dataset.state = state;
    status.textContent = text;
  };
  cancelBtn.addEventListener("click", () => controller.abort());
  const handle = (line) => {
    const msg = JSON.parse(line);
    if (msg.kind === "match") {
      matches += 1;
      list.insertAdjacentHTML("beforeend", msg.html);
    } else if (msg.kind === "progress") {
      progress.value = msg.scanned;
      setStatus("running", `Scanned ${msg.scanned.toLocaleString()} messages in ${msg.elapsed} s, ${matches} matches…`);
    } else if (msg.kind === "done") {
      progress.value = msg.scanned;
      const why = {
        end: "reached the end",
        messages: "stopped at the message limit",
        seconds: "stopped at the time limit",
        matches: "stopped at the match limit",
        cancelled: "cancelled",
      }[msg.reason] || msg.reason;
      setStatus("done", `Done: ${matches} matches in ${msg.scanned.toLocaleString()} messages scanned (${msg.elapsed} s), ${why}.`);
      if (msg.resume) {
        const params = new URLSearchParams(location.search);
        params.set("cursor", msg.resume);
        params.set("dir", "next");
        resume.href = `?${params}`;
        resume.hidden = false;
      }
      cancelBtn.disabled = true;
    } else if (msg.kind === "error") {
      setStatus("error", msg.message);
    }
  };
  (async () => {
    try {
      const response = await fetch(search.dataset.url, { signal: controller.signal });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        setStatus("error", body.error || `The search failed (${response.status}).`);
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n")) >= 0) {
          handle(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 1);
        }
      }
    } catch (err) {
      if (err.name === "AbortError") setStatus("cancelled", `Cancelled: ${matches} matches so far.`);
      else setStatus("error", `The search stopped: ${err.message}`);
      cancelBtn.disabled = true;
    }
  })();
}

// ------------------------------------------------------------------ groups: lag trends
for (const cell of document.querySelectorAll("td.trend[data-trend]")) {
  const values = cell.dataset.trend.split(",").filter(Boolean).map(Number);
  if (values.length > 1) cell.append(sparkline(values, { label: "lag trend" }));
}

// ------------------------------------------------------------------ service map: chaos switches
// Each node shows its switches while they are on; the table of switches loses a row when one ends.
function showChaos(switches) {
  for (const node of document.querySelectorAll("#service-map [data-service]")) {
    const mine = switches.filter((s) => s.service === node.dataset.service);
    node.classList.toggle("chaos-on", mine.length > 0);
    const label = node.querySelector("[data-chaos]");
    if (label) label.textContent = mine.map((s) => `⚡ ${s.description}`).join(" · ");
  }
  const on = new Set(switches.map((s) => `${s.service}:${s.kind}`));
  for (const row of document.querySelectorAll("[data-chaos-switch]")) {
    if (!on.has(row.dataset.chaosSwitch)) row.remove();
  }
  for (const s of switches) {
    const cell = document.querySelector(`[data-chaos-switch="${CSS.escape(`${s.service}:${s.kind}`)}"] [data-seconds-left]`);
    if (cell) cell.textContent = `${s.seconds_left} s`;
  }
}

const chaosForm = $("#chaos-form");
if (chaosForm) {
  // Show only the fields of the chosen switch, and the event types of the chosen service.
  const sync = () => {
    const kind = chaosForm.elements.kind.value;
    for (const el of chaosForm.querySelectorAll("[data-for-kind]")) el.hidden = el.dataset.forKind !== kind;
    const service = chaosForm.elements.service.value;
    const groups = chaosForm.querySelectorAll("[data-service-types]");
    for (const group of groups) group.disabled = group.dataset.serviceTypes !== service;
    const select = chaosForm.elements.event_type;
    if (select.selectedOptions[0]?.parentElement.disabled) {
      const first = chaosForm.querySelector(`[data-service-types="${CSS.escape(service)}"] option`);
      if (first) first.selected = true;
    }
  };
  chaosForm.addEventListener("change", sync);
  sync();
}

// ------------------------------------------------------------------ service map: rates and lag
const mapStatus = $("#map-status");
if (mapStatus) {
  let previous = null;
  const refresh = async () => {
    try {
      const response = await fetch(mapStatus.dataset.url, { headers: { Accept: "application/json" } });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || response.statusText);
      for (const edge of body.edges) {
        const el = document.querySelector(`[data-edge="${CSS.escape(`${edge.topic}:${edge.to}`)}"]`);
        if (!el) continue;
        const before = previous?.edges.find((e) => e.topic === edge.topic && e.to === edge.to);
        if (before) {
          const rate = (edge.end - before.end) / Math.max(0.001, body.at - previous.at);
          el.querySelector("[data-rate]").textContent = `${rate.toFixed(1)} ev/s`;
        }
        el.querySelector("[data-edge-lag]").textContent = edge.lag ?? "–";
      }
      for (const node of body.nodes) {
        const el = document.querySelector(`[data-service="${CSS.escape(node.name)}"] [data-members]`);
        if (el) el.textContent = `${node.members} consumer${node.members === 1 ? "" : "s"}`;
      }
      showChaos(body.chaos || []);
      previous = body;
      mapStatus.textContent = `as of ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      mapStatus.textContent = `not refreshed: ${err.message}`;
    }
  };
  refresh();
  setInterval(refresh, 2000);
}
