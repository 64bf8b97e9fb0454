// The dashboard's websocket: connects, asks for a catch-up from the last seq it saw, notices gaps,
// acknowledges each frame it handled (the server paces what it sends by these), and reconnects with
// exponential backoff (with jitter). A 4403 close means "not staff": no retry.

export class LiveSocket {
  constructor(path, { onFrame, onState, lastSeq }) {
    this.url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
    this.onFrame = onFrame;
    this.onState = onState;
    this.lastSeq = lastSeq;
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.waitingForCatchup = false;
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    this.onState("connecting", this.attempt ? `Reconnecting (attempt ${this.attempt + 1})…` : "Connecting…");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let framesHandled = 0;
    ws.addEventListener("open", () => {
      this.attempt = 0;
      this.onState("live", "Live");
      this.requestCatchup();
    });
    ws.addEventListener("message", (ev) => {
      try {
        this.handle(ev.data);
      } finally {
        framesHandled += 1;
        if (this.ws === ws) this.send({ type: "ack", frames: framesHandled });
      }
    });
    ws.addEventListener("close", (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === 4403) {
        this.onState("forbidden", "Not allowed: log in as staff");
        return;
      }
      this.scheduleReconnect();
    });
  }

  handle(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame.kind === "catchup" || frame.kind === "snapshot") this.waitingForCatchup = false;
    if (frame.kind === "resync") {
      this.requestCatchup();
      return;
    }
    if (frame.kind === "batch") {
      const last = this.lastSeq();
      if (last === null || this.waitingForCatchup) {
        // Not synced yet: the catch-up on its way covers this frame. Apply the cards only.
        this.onFrame({ ...frame, events: [], partial: true });
        return;
      }
      if (frame.from_seq > last + 1) {
        this.requestCatchup(); // a gap: frames were dropped somewhere
        this.onFrame({ ...frame, events: [], partial: true });
        return;
      }
    }
    this.onFrame(frame);
  }

  requestCatchup() {
    this.waitingForCatchup = true;
    this.send({ type: "catchup", since: this.lastSeq() });
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  scheduleReconnect() {
    const base = Math.min(30000, 500 * 2 ** this.attempt);
    const delay = Math.round(base * (0.5 + Math.random() / 2));
    this.attempt += 1;
    this.onState("reconnecting", `Disconnected; retrying in ${Math.ceil(delay / 1000)} s`);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.ws) return;
    this.connect();
  }
}
