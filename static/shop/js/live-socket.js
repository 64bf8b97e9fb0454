// A websocket that stays up: it reconnects with exponential backoff and jitter (so a restarted server
// is not stampeded), at once when the browser comes back online, and stops for good on a 4403 refusal.
// The server sends a full snapshot on every connect, so nothing missed while away stays missing.

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;
const FORBIDDEN = 4403;

export function liveSocket(path, { onMessage, onState = () => {} }) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}${path}`;
  let socket = null;
  let timer = null;
  let attempt = 0;
  let stopped = false;

  function connect() {
    clearTimeout(timer);
    onState("connecting");
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      attempt = 0;
      onState("live");
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return; // not ours; ignore rather than break the page
      }
      onMessage(frame);
    });
    socket.addEventListener("close", (event) => {
      if (stopped) return;
      if (event.code === FORBIDDEN) {
        stopped = true;
        onState("forbidden");
        return;
      }
      const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt += 1;
      onState("reconnecting");
      timer = setTimeout(connect, delay);
    });
  }

  window.addEventListener("online", () => {
    if (!stopped && socket && socket.readyState === WebSocket.CLOSED) {
      attempt = 0;
      connect();
    }
  });

  connect();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      if (socket) socket.close();
    },
  };
}
