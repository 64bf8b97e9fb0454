"""Consumer lag for /metrics, read from the broker at scrape time for every consumer group of the project.

Each consumer's own gauge disappears with it; this one does not: the committed offsets stay on the broker,
so a group whose consumers died shows its lag growing while producers go on. Cheap and bounded: one read
serves every scrape for CONSUMER_LAG_CACHE_SECONDS, a scrape waits at most
CONSUMER_LAG_SCRAPE_TIMEOUT_SECONDS for a read in flight, and a failed or slow read answers
`conveyor_group_lag_up 0` (never an error page).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings

log = logging.getLogger("eventbus.lag")


def project_groups() -> dict[str, list[str]]:
    """Every consumer group of the project and the topics it reads."""
    from .service import service

    return {service(name).group: service(name).topics() for name in settings.CONVEYOR_SERVICES}


class ScrapedLag:
    def __init__(self, groups=project_groups):
        self.groups = groups
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lag-scrape")
        self._reader = None
        self._inflight: Future | None = None
        self._result: tuple[float, list, str | None] | None = None  # (monotonic time, rows, error)

    def text(self) -> bytes:
        ttl = settings.CONSUMER_LAG_CACHE_SECONDS
        with self._lock:
            fresh = self._result is not None and time.monotonic() - self._result[0] < ttl
            if not fresh and self._inflight is None:
                self._inflight = self._pool.submit(self._read)
            inflight = self._inflight
        if not fresh:
            try:
                inflight.result(timeout=settings.CONSUMER_LAG_SCRAPE_TIMEOUT_SECONDS)
            except FutureTimeout:
                return render([], error="timeout", age=None)
        read_at, rows, error = self._result
        return render(rows, error=error, age=time.monotonic() - read_at)

    def _read(self) -> None:
        rows, error = [], None
        try:
            if self._reader is None:
                from .lag import LagReader

                self._reader = LagReader()
            rows = self._reader.read_groups(self.groups())
        except Exception as exc:  # the broker away: say so in the metrics; the next read starts afresh
            error = f"{type(exc).__name__}: {exc}"
            log.warning("cannot read consumer lag from the broker (%s); /metrics says conveyor_group_lag_up 0", error)
            reader, self._reader = self._reader, None
            if reader is not None:
                reader.close()
        with self._lock:
            self._result = (time.monotonic(), rows, error)
            self._inflight = None


def render(rows, *, error: str | None, age: float | None) -> bytes:
    lines = [
        "# HELP conveyor_group_lag Records between a group's committed offset and its partition's end (broker)",
        "# TYPE conveyor_group_lag gauge",
    ]
    totals: dict[str, int] = {}
    for row in rows:
        labels = f'group="{row.group}",topic="{row.topic}",partition="{row.partition}"'
        lines.append(f"conveyor_group_lag{{{labels}}} {row.lag}")
        totals[row.group] = totals.get(row.group, 0) + row.lag
    lines += ["# HELP conveyor_group_lag_total Records a group is behind, summed over its partitions"]
    lines += ["# TYPE conveyor_group_lag_total gauge"]
    lines += [f'conveyor_group_lag_total{{group="{group}"}} {total}' for group, total in sorted(totals.items())]
    lines += [
        "# HELP conveyor_group_lag_up 1 when the last read of consumer lag from the broker succeeded, 0 if not",
        "# TYPE conveyor_group_lag_up gauge",
        f"conveyor_group_lag_up {0 if error else 1}",
    ]
    if age is not None:
        lines += [
            "# HELP conveyor_group_lag_age_seconds Age of the lag figures (they are cached between scrapes)",
            "# TYPE conveyor_group_lag_age_seconds gauge",
            f"conveyor_group_lag_age_seconds {age:.3f}",
        ]
    return ("\n".join(lines) + "\n").encode()


SCRAPER = ScrapedLag()
