// Time travel under the live stage board: a scrubber over a past window of the dashboard's event log
// (/dashboard/api/board-history), play forward at ×1…×60, and "back to live". While it replays, the board
// shows the orders that moved in the window, each in its stage at the chosen moment; live frames keep
// updating the dashboard's state but do not repaint the board until "Live" is pressed.

const MAIN = ["placed", "reserved", "packed", "dispatched", "delivered"];
const FINAL = new Set(["delivered", "rejected", "cancelled"]);
const TICK_MS = 200;
const MAX_CARDS_SHOWN = 150;

// The same rule as the server's stages.should_move: an order never moves back along the main line,
// and never leaves a final stage.
function shouldMove(current, target) {
  if (!current) return true;
  if (FINAL.has(current) || current === target) return false;
  if (!MAIN.includes(target)) return true;
  return MAIN.indexOf(target) > MAIN.indexOf(current);
}

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

export function setupTimeTravel({ root, columns, enter, leave }) {
  const panel = root.querySelector("#time-travel");
  if (!panel) return;
  const scrubber = panel.querySelector("#scrubber");
  const play = panel.querySelector("#tt-play");
  const live = panel.querySelector("#tt-live");
  const windowSelect = panel.querySelector("#tt-window");
  const at = panel.querySelector("#tt-at");
  const status = panel.querySelector("#tt-status");
  const board = root.querySelector("#board");
  const badge = root.querySelector("#replay-badge");
  const url = panel.dataset.url;
  let data = null; // {since, until, start, events}
  let loading = null;
  let timer = null;
  let speed = 1;

  const setStatus = (state, text) => {
    status.dataset.state = state;
    status.textContent = text;
  };
  const since = () => Date.parse(data.since);
  const until = () => Date.parse(data.until);

  async function load(range) {
    setStatus("loading", "loading the window's events…");
    const query = new URLSearchParams(range);
    const response = await fetch(`${url}?${query}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) {
      setStatus("error", body.error || `the history did not load (${response.status})`);
      throw new Error(body.error);
    }
    data = body;
    panel.dataset.since = data.since; // the scrubber's 0, in milliseconds from here
    scrubber.max = String(until() - since());
    const orders = new Set(data.events.map((e) => e[1])).size;
    setStatus("ready", `${data.events.length} moves of ${orders} orders, ${clock(since())} to ${clock(until())}`);
    return data;
  }

  // The window: given in the URL (?since=&until=, or ?at= with the window around it), else the last N
  // minutes up to now, fetched when the scrubber is first touched.
  function rangeFromNow() {
    const minutes = Number(windowSelect.value);
    const end = new Date();
    return { since: new Date(end - minutes * 60_000).toISOString(), until: end.toISOString() };
  }
  const ensure = () => (loading ||= load(rangeFromNow()).finally(() => (loading = null)));

  function render() {
    const moment = since() + Number(scrubber.value);
    const cards = { ...data.start };
    for (const [time, order, stage] of data.events) {
      if (Date.parse(time) > moment) break;
      if (shouldMove(cards[order], stage)) cards[order] = stage;
    }
    const byStage = {};
    for (const [order, stage] of Object.entries(cards)) (byStage[stage] ||= []).push(order);
    for (const [stage, column] of Object.entries(columns)) {
      const orders = byStage[stage] || [];
      column.querySelector("[data-count-for]").textContent = orders.length;
      column.querySelector(".cards").replaceChildren(
        ...orders.slice(-MAX_CARDS_SHOWN).reverse().map((id) => {
          const li = document.createElement("li");
          const button = document.createElement("button");
          button.type = "button";
          button.className = "card replayed";
          button.dataset.orderId = id;
          const label = document.createElement("span");
          label.className = "card-id";
          label.textContent = id.slice(0, 8);
          button.append(label);
          li.append(button);
          return li;
        })
      );
      const more = column.querySelector(".more");
      if (more) {
        more.hidden = orders.length <= MAX_CARDS_SHOWN;
        more.textContent = `+${orders.length - MAX_CARDS_SHOWN} more`;
      }
    }
    const text = clock(moment);
    at.value = at.textContent = new Date(moment).toISOString().replace(/\.\d{3}Z$/, "Z");
    board.dataset.replaying = text;
    badge.textContent = `replaying ${text}`;
  }

  function replaying() {
    if (!board.hasAttribute("data-replaying")) {
      enter();
      root.classList.add("replaying");
      badge.hidden = false;
      live.disabled = false;
    }
    render();
  }

  function stop() {
    clearInterval(timer);
    timer = null;
    play.textContent = "▶ Play";
    play.setAttribute("aria-pressed", "false");
  }

  function backToLive() {
    stop();
    board.removeAttribute("data-replaying");
    root.classList.remove("replaying");
    badge.hidden = true;
    live.disabled = true;
    at.value = at.textContent = "live";
    scrubber.value = scrubber.max;
    data = null; // the next scrub fetches a fresh window ending now
    leave();
  }

  scrubber.addEventListener("input", async () => {
    stop();
    if (!data) {
      const fraction = Number(scrubber.value) / Number(scrubber.max); // where it was let go, before the load
      await ensure();
      scrubber.value = String(Math.round(fraction * Number(scrubber.max)));
    }
    replaying();
  });

  play.addEventListener("click", async () => {
    if (timer) return stop();
    if (!data) {
      await ensure();
      scrubber.value = "0";
    }
    if (Number(scrubber.value) >= Number(scrubber.max)) scrubber.value = "0";
    play.textContent = "❚❚ Pause";
    play.setAttribute("aria-pressed", "true");
    timer = setInterval(() => {
      scrubber.value = String(Math.min(Number(scrubber.max), Number(scrubber.value) + speed * TICK_MS));
      replaying();
      if (Number(scrubber.value) >= Number(scrubber.max)) stop();
    }, TICK_MS);
    replaying();
  });

  for (const button of panel.querySelectorAll("[data-speed]")) {
    button.addEventListener("click", () => {
      speed = Number(button.dataset.speed);
      for (const other of panel.querySelectorAll("[data-speed]")) other.setAttribute("aria-pressed", String(other === button));
    });
  }
  windowSelect.addEventListener("change", () => {
    if (board.hasAttribute("data-replaying")) {
      stop();
      load(rangeFromNow()).then(() => {
        scrubber.value = "0";
        replaying();
      });
    } else data = null;
  });
  live.addEventListener("click", backToLive);

  // `/dashboard/?at=<time>` (or ?since=&until=) opens the board as it was then.
  const params = new URLSearchParams(location.search);
  const atParam = params.get("at");
  if (params.get("since") || atParam) {
    let range;
    if (params.get("since")) range = { since: params.get("since"), until: params.get("until") || new Date().toISOString() };
    else {
      const moment = Date.parse(atParam);
      if (Number.isNaN(moment)) {
        setStatus("error", `at: ${atParam} is not a time; write e.g. ?at=2025-01-31T09:30:00Z`);
        return;
      }
      const end = Math.min(Date.now(), moment + 15 * 60_000);
      range = { since: new Date(moment - 5 * 60_000).toISOString(), until: new Date(end).toISOString() };
    }
    load(range)
      .then(() => {
        scrubber.value = atParam ? String(Date.parse(atParam) - since()) : scrubber.max;
        replaying();
      })
      .catch(() => {});
  }
}
