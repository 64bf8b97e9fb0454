"""How busy a broker's request handler threads are, read from outside it: each thread's CPU time.

Kafka's own figure, `RequestHandlerAvgIdlePercent`, needs JMX, and the bench's brokers run without it (the
CSV reporter Kafka ships fails on 4.4; docs/performance.md). Every `data-plane-kafka-…` thread is named
`data-plane-kafk` in /proc, so the handlers are found once by a thread dump (`jcmd <pid> Thread.print`,
which comes with a JDK), then sampled from `/proc/<pid>/task/<tid>/stat`. A handler's CPU share is its busy
time less the blocking waits Kafka counts as busy, so 1 − the share bounds Kafka's idle ratio from above.
In a combined broker+controller node both pools' handlers carry the name; the broker's are the busy ones,
hence the busiest thread's share.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import threading
import time
from functools import cache

from bench.common import rnd, stat_cpu_seconds

HANDLER = re.compile(r'^"data-plane-kafka-request-handler-\d+"[^\n]*?\bnid=(0x[0-9a-f]+)', re.MULTILINE)


def handler_ids(dump: str) -> list[int]:
    """The native thread ids of the request handlers in a HotSpot thread dump."""
    return [int(nid, 16) for nid in HANDLER.findall(dump)]


@cache
def handler_threads(pid: int) -> tuple[int, ...]:
    """A running broker's handler threads, dumped once: the scale-out section samples the same cluster
    for every N."""
    jcmd = shutil.which("jcmd")
    if jcmd is None:
        raise LookupError("jcmd not found: a JDK (e.g. openjdk-17-jdk-headless) reads the request handlers")
    done = subprocess.run([jcmd, str(pid), "Thread.print"], capture_output=True, text=True, timeout=60)
    found = handler_ids(done.stdout)
    if not found:
        raise LookupError(f"no request handler threads in jcmd's dump of {pid}: {done.stderr.strip()[:200]}")
    return tuple(found)


class RequestHandlers(threading.Thread):
    """Samples every second the CPU share of each broker's request handler threads, until `halt` is set."""

    def __init__(self, pids: dict[str, int], interval: float = 1.0):
        super().__init__(name="bench-kafka-handlers", daemon=True)
        self.pids, self.interval = pids, interval
        self.halt = threading.Event()
        self.error: str | None = None
        self.threads: dict[str, tuple[int, ...]] = {}
        try:
            self.threads = {node: handler_threads(pid) for node, pid in pids.items()}
        except (LookupError, OSError, subprocess.SubprocessError) as exc:
            self.error = str(exc)
        self.busiest: dict[str, list[float]] = {node: [] for node in self.threads}  # a share per interval

    def run(self) -> None:
        if self.error:
            return
        before, at = self._read(), time.monotonic()
        while not self.halt.wait(self.interval):
            now, now_at = self._read(), time.monotonic()
            for node, cpus in now.items():
                shares = [
                    (c - b) / (now_at - at) for c, b in zip(cpus, before[node], strict=True) if None not in (c, b)
                ]
                if shares:
                    self.busiest[node].append(max(shares))
            before, at = now, now_at

    def _read(self) -> dict[str, list[float | None]]:
        return {
            node: [stat_cpu_seconds(f"/proc/{self.pids[node]}/task/{t}/stat") for t in tids]
            for node, tids in self.threads.items()
        }

    def summary(self) -> dict | str:
        """Per broker, the busiest handler thread's CPU share: its mean over the samples and the highest."""
        if self.error:
            return f"not read: {self.error}"
        return {
            node: {
                "handler_threads": len(self.threads[node]),
                "busiest_thread_share_mean": rnd(statistics.fmean(shares), 3) if shares else None,
                "busiest_thread_share_max": rnd(max(shares), 3) if shares else None,
                "samples": len(shares),
            }
            for node, shares in self.busiest.items()
        }
