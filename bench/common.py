"""Shared bits of the benchmark: paths, progress lines, percentiles, payloads and the processes it owns
(with their CPU time and peak RSS read from /proc)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
PYTHON = sys.executable
# The Procfile's Celery worker (threads, two of them), without the chatter a bench does not need.
CELERY_WORKER = [
    PYTHON,
    *("-m", "celery", "-A", "config", "worker", "-l", "warning", "-c", "2"),
    *("--without-gossip", "--without-mingle", "--without-heartbeat", "-P", "threads"),
]
CLK_TCK = os.sysconf("SC_CLK_TCK")
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[bench {time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def percentile(values, q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def dist(values_ms, **extra) -> dict:
    return {
        "p50": rnd(percentile(values_ms, 50), 2),
        "p95": rnd(percentile(values_ms, 95), 2),
        "p99": rnd(percentile(values_ms, 99), 2),
        "n": len(values_ms),
        **extra,
    }


def rnd(value, digits: int = 1):
    return None if value is None else round(float(value), digits)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(condition, timeout: float, what: str, interval: float = 0.1, raise_errors: bool = False):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except RuntimeError:
            raise
        except Exception as exc:  # the system under test may not be up yet
            if raise_errors and not isinstance(exc, OSError | sqlite3.Error):
                raise
            last, value = exc, None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error {last!r})" if last else "")
    )


# ---------------------------------------------------------------- /proc


def cpu_seconds(pid: int, descendants: bool = False) -> float:
    """utime + stime of a process (all its threads), in seconds; 0 when it is gone. With `descendants`,
    its live child processes' too (a prefork Celery worker's pool)."""
    return sum(stat_cpu_seconds(f"/proc/{each}/stat") or 0.0 for each in (process_tree(pid) if descendants else [pid]))


def stat_cpu_seconds(path: str) -> float | None:
    """utime + stime from a /proc `stat` file (a process's, or one thread's under task/), in seconds; None
    when it is gone."""
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants."""
    found, todo = [], [pid]
    while todo:
        each = todo.pop()
        found.append(each)
        try:
            for task in Path(f"/proc/{each}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb(pid: int) -> float | None:
    kb = status_kb(pid, "VmHWM")
    return None if kb is None else round(kb / 1024, 1)


def machine() -> dict:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = Path("/proc/loadavg").read_text().split()[:3]
    return {
        "cores": os.cpu_count(),
        "memory_mb": mem_kb // 1024,
        "cpu_model": model,
        "loadavg_at_start": [float(x) for x in load],
        "python": sys.version.split()[0],
    }


# ---------------------------------------------------------------- processes we own


class Procs:
    """Child processes of the benchmark, each in its own session (so a stop takes its children too)."""

    def __init__(self, env: dict[str, str], logdir: Path):
        self.env = env
        self.logdir = logdir
        logdir.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, subprocess.Popen] = {}
        self.peaks: dict[str, float | None] = {}
        self.extra_pids: dict[str, int] = {}  # not ours to stop (the broker's JVM is stopped by Cluster)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 (the child keeps it)
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.running[name] = process
        return process

    def consumer(self, service: str, name: str | None = None, env: dict[str, str] | None = None, argv=None):
        return self.start(name or service, argv or [PYTHON, "manage.py", "run_consumer", service], env)

    def pids(self) -> dict[str, int]:
        out = {name: p.pid for name, p in self.running.items() if p.poll() is None}
        out.update(self.extra_pids)
        out["bench"] = os.getpid()
        return out

    def cpu(self) -> dict[str, float]:
        # Every child's pool processes count with it; the bench's own children are the other entries.
        return {name: cpu_seconds(pid, descendants=name != "bench") for name, pid in self.pids().items()}

    def remember_peaks(self) -> None:
        """The peak RSS of each entry's largest process (a Celery worker's pool processes included)."""
        for name, pid in self.pids().items():
            peaks = [p for p in map(peak_rss_mb, process_tree(pid) if name != "bench" else [pid]) if p is not None]
            if peaks:
                self.peaks[name] = max(*peaks, self.peaks.get(name) or 0)

    def stop(self, name: str, timeout: float = 20) -> int | None:
        process = self.running.pop(name, None)
        if process is None:
            return None
        peak = peak_rss_mb(process.pid)
        if peak is not None:
            self.peaks[name] = max(peak, self.peaks.get(name) or 0)
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(10)
        return process.returncode

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.logdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def check_alive(self, *names: str) -> None:
        for name in names or list(self.running):
            process = self.running.get(name)
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")


def copy_sqlite(src_dir: Path, dst_dir: Path) -> None:
    dst_dir.mkdir(parents=True, exist_ok=True)
    for path in src_dir.glob("*.sqlite3*"):
        shutil.copy2(path, dst_dir / path.name)


# ---------------------------------------------------------------- order-sized payloads

SKUS = ["MUG-001", "TEE-002", "CAP-003", "BAG-004", "STK-005", "NTB-006", "PEN-007", "SOC-009", "KEY-013"]
ADDRESS_PAD = "Flat 4, The Old Granary, 12 Partition Lane, Offset-upon-Commit, Kafkashire KF1 2RQ, United Kingdom. "


def order_fields(i: int) -> dict:
    """A customer and two order lines; with the envelope this is a ~500-byte event on the wire."""
    return {
        "email": f"bench{i}@example.com",
        "name": f"Benchmark Customer {i}",
        "address": f"{i} {ADDRESS_PAD}Leave at the door.",
        "lines": [
            {"sku": SKUS[i % len(SKUS)], "quantity": 1 + i % 3},
            {"sku": SKUS[(i + 3) % len(SKUS)], "quantity": 1},
        ],
    }


def raw_payload(i: int) -> bytes:
    """An order-sized JSON document (~500 bytes) for the sections that bypass the envelope."""
    import orjson

    fields = order_fields(i)
    body = {
        "order_id": f"00000000-0000-4000-8000-{i:012d}",
        **fields,
        "lines": [{**line, "unit_price": "12.50"} for line in fields["lines"]],
        "total": "37.50",
        "placed_at": "2026-01-01T12:00:00.000000+00:00",
        "channel": "web",
        "currency": "EUR",
        "note": "Please ring twice; the courier knows the way.",
    }
    return orjson.dumps(body)


def order_placed_message(i: int):
    """Order i as the shop would publish it: an OrderPlaced envelope built by the real encoder."""
    import uuid

    from eventbus import envelope
    from shop.events import OrderPlaced

    fields = order_fields(i)
    order_id = str(uuid.uuid4())
    data = OrderPlaced(
        order_id=order_id,
        email=fields["email"],
        name=fields["name"],
        address=fields["address"],
        lines=[{**line, "unit_price": "12.50"} for line in fields["lines"]],
        total="37.50",
    ).to_data()
    return envelope.encode(
        event_type=OrderPlaced.TYPE, source_app="shop", subject=order_id, data=data, correlation_id=order_id
    )
