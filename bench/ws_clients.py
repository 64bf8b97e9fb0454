"""Section 4's dashboard clients: N staff websockets on /ws/dashboard/, shared among --processes processes.

A minimal RFC 6455 client on asyncio streams (stdlib only). Each client asks for its catch-up, then
follows the `batch` frames' seqs: a gap, a `resync` or a tail it never got counts as frames lost.
Commit→frame is measured from each event's `received` stamp; build→frame from the batch's `built` stamp
(when the dashboard consumer made the frame). Prints `READY` when every client holds its snapshot. Once the
bench writes the dashboard's final seq to --final-seq-file (or on SIGTERM) it waits for the clients to
reach it and prints `RESULT {json}`.

    python bench/ws_clients.py --port P --cookie SESSIONID --clients 20
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import multiprocessing
import os
import signal
import struct
import sys
import time
from datetime import datetime

import orjson

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.common import percentile


@functools.lru_cache(maxsize=65536)
def epoch(stamp: str) -> float:
    """An ISO time as seconds; cached, because every client reads the same stamps and this one process plays
    all the browsers: their parsing would otherwise delay the clients served after them."""
    return datetime.fromisoformat(stamp).timestamp()


class WebSocket:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, path: str, cookie: str) -> WebSocket:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
                f"Cookie: sessionid={cookie}\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket refused: {head[:200]!r}")
        return cls(reader, writer)

    async def send_text(self, text: str) -> None:
        self._send(0x1, text.encode())

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        header = bytes([0x80 | opcode])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)

    async def receive(self) -> bytes | None:
        """The next text/binary message (fragments joined); None when the server closed."""
        message = b""
        while True:
            b0, b1 = await self.reader.readexactly(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(n)
            if opcode == 0x8:
                return None
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            message += payload
            if b0 & 0x80:
                return message


class Client:
    def __init__(self, index: int):
        self.index = index
        self.last_seq: int | None = None
        self.frames = 0
        self.batch_frames = 0
        self.events = 0
        self.lost = 0
        self.resyncs = 0
        self.lat_ms: list[float] = []
        self.built_ms: list[float] = []  # the frame's build in the dashboard consumer → here
        self.ready = asyncio.Event()
        self.error: str | None = None
        self.kinds: dict[str, int] = {}
        self.reconnects = 0
        self.gaps: list[list[int]] = []
        self.tail: list[int] | None = None
        self.first_batch: float | None = None
        self.last_batch: float | None = None

    async def run(self, port: int, cookie: str, counting: asyncio.Event) -> None:
        try:
            for attempt in range(6):  # like a browser: reconnect when the server is too busy to accept in time
                try:
                    ws = await WebSocket.connect(port, "/ws/dashboard/", cookie)
                    break
                except (ConnectionError, OSError, asyncio.IncompleteReadError):
                    if attempt == 5:
                        raise
                    self.reconnects += 1
                    await asyncio.sleep(0.5 * 2**attempt)
            await ws.send_text('{"type": "catchup", "since": null}')
            handled = 0
            while True:
                raw = await ws.receive()
                if raw is None:
                    self.error = self.error or "closed by server"
                    return
                now = time.time()
                frame = orjson.loads(raw)
                handled += 1  # acknowledged like the dashboard's page does, so the server paces this client
                await ws.send_text(f'{{"type": "ack", "frames": {handled}}}')
                kind = frame.get("kind")
                if counting.is_set():
                    self.frames += 1
                    self.kinds[kind] = self.kinds.get(kind, 0) + 1
                if kind in ("snapshot", "catchup"):
                    self.last_seq = frame.get("to_seq", self.last_seq)
                    self.ready.set()
                elif kind == "resync":
                    self.resyncs += 1
                    await ws.send_text(orjson.dumps({"type": "catchup", "since": self.last_seq}).decode())
                elif kind == "batch" and self.last_seq is not None:
                    if frame["from_seq"] > self.last_seq + 1:
                        self.lost += frame["from_seq"] - self.last_seq - 1
                        if len(self.gaps) < 5:
                            self.gaps.append([self.last_seq + 1, frame["from_seq"] - 1])
                    self.last_seq = max(self.last_seq, frame["to_seq"])
                    if counting.is_set():
                        self.first_batch = self.first_batch or now
                        self.last_batch = now
                        self.batch_frames += 1
                        self.events += frame.get("count", 0)
                        if frame.get("built"):
                            self.built_ms.append((now - frame["built"]) * 1000)
                        for event in frame.get("events", ()):
                            received = event.get("received")
                            if received:
                                self.lat_ms.append((now - epoch(received)) * 1000)
        except Exception as exc:  # reported, never fatal to the others
            self.error = f"{type(exc).__name__}: {exc}"
            self.ready.set()


async def play(args, count: int, ready, started_at) -> dict:
    """One process's share of the browsers; returns what they saw, for the parent to add up."""
    counting = asyncio.Event()
    clients = [Client(i) for i in range(count)]
    tasks = []
    for client in clients:
        tasks.append(asyncio.ensure_future(client.run(args.port, args.cookie, counting)))
        await asyncio.sleep(0.01)
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 60)
    counting.set()
    ready.set()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if args.final_seq_file:
        loop.create_task(_when_file(args.final_seq_file, stop))
    await stop.wait()
    # the bench writes the dashboard's last seq once it has settled: wait (bounded) for every client to reach it
    final = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        final = _read_final(args.final_seq_file) if args.final_seq_file else 0
        if final and all(c.error or (c.last_seq or 0) >= final for c in clients):
            break
        await asyncio.sleep(0.1)
    for client in clients:
        if final and not client.error and client.last_seq is not None and client.last_seq < final:
            client.lost += final - client.last_seq  # never arrived
            client.tail = [client.last_seq + 1, final]
    for task in tasks:
        task.cancel()
    return report(clients, seconds=time.time() - started_at.value)


def report(clients: list[Client], seconds: float) -> dict:
    """What a player's browsers saw over `seconds`, for the parent to add up."""
    fields = ("error", "reconnects", "gaps", "tail", "frames", "batch_frames", "events", "lost", "resyncs", "kinds")
    return {
        "clients": [{k: getattr(c, k) for k in fields} for c in clients],
        "lat_ms": [x for c in clients for x in c.lat_ms],
        "built_ms": [x for c in clients for x in c.built_ms],
        "first_batch": min((c.first_batch for c in clients if c.first_batch), default=None),
        "last_batch": max((c.last_batch for c in clients if c.last_batch), default=None),
        "seconds": seconds,
    }


def player(args, count: int, ready, started_at, results) -> None:
    try:
        results.put(asyncio.run(play(args, count, ready, started_at)))
    except BaseException as exc:  # its browsers count as not held; the other players' results still add up
        clients = [Client(i) for i in range(count)]
        for client in clients:
            client.error = f"player: {type(exc).__name__}: {exc}"
        results.put(report(clients, seconds=0.0))  # it played for no time
        ready.set()


def main_with_players(args) -> dict:
    """The browsers are shared among --processes players: one Python process playing 100 browsers parses
    their frames one after the other, and its queue, not the server, would set the later ones' latency."""
    context = multiprocessing.get_context("fork")
    processes = max(1, min(args.processes, args.clients))
    shares = [args.clients // processes + (1 if k < args.clients % processes else 0) for k in range(processes)]
    started_at = context.Value("d", 0.0)
    results = context.Queue()
    readies = [context.Event() for _ in shares]
    players = [
        context.Process(target=player, args=(args, n, ready, started_at, results), daemon=True)
        for n, ready in zip(shares, readies, strict=True)
    ]
    for each in players:
        each.start()
    for ready in readies:
        if not ready.wait(90):
            raise SystemExit("the websocket clients did not all connect within 90 s; see the web's log")
    started_at.value = time.time()
    print("READY", flush=True)

    def forward(signum, _frame):
        for each in players:
            if each.pid:
                os.kill(each.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    parts = [results.get() for _ in players]
    for each in players:
        each.join(10)
    return summarise(args, parts)


def summarise(args, parts: list[dict]) -> dict:
    clients = [c for part in parts for c in part["clients"]]
    lat = [x for part in parts for x in part["lat_ms"]]
    built = [x for part in parts for x in part["built_ms"]]
    elapsed = max(part["seconds"] for part in parts) or 1e-9
    firsts = [p["first_batch"] for p in parts if p["first_batch"]]
    lasts = [p["last_batch"] for p in parts if p["last_batch"]]
    active = (max(lasts) - min(firsts)) if firsts and lasts else 0.0
    errors = [c["error"] for c in clients if c["error"]]
    kinds: dict[str, int] = {}
    for c in clients:
        for k, n in c["kinds"].items():
            kinds[k] = kinds.get(k, 0) + n
    frames = sum(c["frames"] for c in clients)
    return {
        "clients": args.clients,
        "processes": len(parts),
        "held": sum(1 for c in clients if not c["error"]),
        "errors": errors[:5],
        "connect_retries": sum(c["reconnects"] for c in clients),
        "gaps_seen": _common([g for c in clients for g in c["gaps"]]),
        "tails_missing": _common([c["tail"] for c in clients if c["tail"]]),
        "seconds": round(elapsed, 2),
        "frames": frames,
        "frames_per_s": round(frames / elapsed, 1),
        "active_seconds": round(active, 2),
        "batch_frames_per_s": round(sum(c["batch_frames"] for c in clients) / (active or elapsed), 1),
        "events_per_s": round(sum(c["events"] for c in clients) / (active or elapsed), 1),
        "frames_lost": sum(c["lost"] for c in clients),
        "resyncs": sum(c["resyncs"] for c in clients),
        "commit_to_frame_p50_ms": _r(percentile(lat, 50)),
        "commit_to_frame_p99_ms": _r(percentile(lat, 99)),
        "build_to_frame_p50_ms": _r(percentile(built, 50)),
        "build_to_frame_p99_ms": _r(percentile(built, 99)),
        "kinds": kinds,
    }


def _common(items: list) -> dict:
    """How many clients saw each gap (a gap all clients share is a frame that was never sent)."""
    out: dict[str, int] = {}
    for item in items:
        key = f"{item[0]}-{item[1]}"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1])[:10])


def _r(value):
    return None if value is None else round(value, 1)


async def _when_file(path: str, stop: asyncio.Event) -> None:
    while not os.path.exists(path):
        await asyncio.sleep(0.1)
    stop.set()


def _read_final(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except OSError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--final-seq-file", default="", help="holds the dashboard's last seq when told to stop")
    parser.add_argument("--processes", type=int, default=4, help="processes that share the browsers among them")
    args = parser.parse_args()
    result = main_with_players(args)
    print("RESULT " + orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
