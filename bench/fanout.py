"""Section 4a: the channel layer alone. One sender `group_send`s order-sized frames to a group of N
receiver channels (channels-redis, the project's layer settings), at the fastest pace that loses nothing:
it keeps at most WINDOW frames ahead of the slowest receiver."""

from __future__ import annotations

import asyncio
import time

from .common import dist, raw_payload

WINDOW = 200


async def _bench(receivers: int, frames: int) -> dict:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    group = f"bench.fanout.{int(time.time() * 1000)}"
    channels = [await layer.new_channel() for _ in range(receivers)]
    for channel in channels:
        await layer.group_add(group, channel)
    got = [0] * receivers
    latencies: list[float] = []
    payload = raw_payload(7).decode()

    async def receive(k: int, channel: str):
        while got[k] < frames:
            message = await layer.receive(channel)
            got[k] += 1
            latencies.append((time.perf_counter() - message["t"]) * 1000)
            if message["n"] == frames - 1:
                break

    tasks = [asyncio.ensure_future(receive(k, c)) for k, c in enumerate(channels)]
    started = time.perf_counter()
    for n in range(frames):
        while n - min(got) > WINDOW:
            await asyncio.sleep(0.001)
        await layer.group_send(group, {"type": "bench.frame", "n": n, "t": time.perf_counter(), "body": payload})
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    except TimeoutError:
        for task in tasks:
            task.cancel()
    elapsed = time.perf_counter() - started
    for channel in channels:
        await layer.group_discard(group, channel)
    received = sum(got)
    return {
        "receivers": receivers,
        "frames_sent": frames,
        "frames_received": received,
        "lost": receivers * frames - received,
        "seconds": round(elapsed, 3),
        "frames_per_s": round(received / elapsed, 1),
        "latency_ms": dist(latencies),
    }


def group_send_bench(receivers: int, frames: int) -> dict:
    return asyncio.run(_bench(receivers, frames))
