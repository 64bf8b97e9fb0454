"""Section 5's client: a small keep-alive HTTP/1.1 load generator on asyncio streams (stdlib only)."""

from __future__ import annotations

import asyncio
import time

from .common import dist


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.read()
    return status, body


async def _worker(port, method, path, make_body, stop_at, samples, statuses, counter) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            i = next(counter)
            body = make_body(i) if make_body else b""
            request = (
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
            ).encode() + body
            t0 = time.perf_counter()
            writer.write(request)
            status, _ = await _read_response(reader)
            samples.append((time.perf_counter() - t0) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _load(port, method, path, make_body, seconds, concurrency) -> dict:
    import itertools

    samples: list[float] = []
    statuses: dict[int, int] = {}
    counter = itertools.count()
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(
        *(_worker(port, method, path, make_body, stop_at, samples, statuses, counter) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "requests": len(samples),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": round(elapsed, 2),
        "per_s": round(ok / elapsed, 1),
        "latency_ms": dist(samples),
        "concurrency": concurrency,
    }


def load(port: int, method: str, path: str, make_body=None, seconds: float = 5, concurrency: int = 16) -> dict:
    return asyncio.run(_load(port, method, path, make_body, seconds, concurrency))
