"""`make bench`: how much an event-driven Django saga costs next to Kafka itself and next to a bare loop.

One run, every ratio taken inside it. Starts its own Kafka (KRaft, on free ports, data under
var/bench/run/) and Redis unless KAFKA_BOOTSTRAP_SERVERS / REDIS_URL are set, a template of every SQLite
database under var/bench/run/db/, and real processes (`manage.py run_consumer …`, a Celery worker,
daphne). Runs the sections of `bench/sections/`, prints progress and a table; writes var/bench/latest.json.

    .venv/bin/python bench/run.py            # the whole bench
    .venv/bin/python bench/run.py --quick    # a smoke run with small counts and short windows
    .venv/bin/python bench/run.py --only saga,ws --py-spy   # some sections, with py-spy profiles
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PYTHON, ROOT, VAR, say
from bench.harness import Bench
from bench.report import goals, print_table
from bench.sections import (
    bare_loop,
    capacity,
    http,
    inventory_hop,
    memory,
    raw_pipe,
    saga,
    scale,
    viewer,
    websockets,
)

# (name for --only, what runs, the sections that need it). In the order they run.
SECTIONS = (
    ("raw", raw_pipe.run, None),
    ("inventory", inventory_hop.run, None),
    ("web", http.start_web, {"http", "saga", "capacity", "ws", "viewer"}),
    ("http", http.run, None),
    ("saga start", saga.start, {"saga", "capacity", "ws", "viewer"}),
    ("saga", saga.run, {"capacity"}),  # the burst's peak is where the capacity search starts
    ("capacity", capacity.run, None),
    ("ws", websockets.run, None),
    ("viewer", viewer.run, None),
    # After the saga (its delivery rate at half capacity paces it), with the saga's processes stopped so
    # that Kafka's CPU is the bare loop's alone.
    ("saga stop", saga.stop, {"bare"}),
    ("bare", bare_loop.run, None),
    # Its own PostgreSQL and three-node Kafka; N copies of every consumer under equal CPU quotas.
    ("scale", scale.run, None),
)
# What --only accepts (the others run when a chosen one needs them).
CHOOSABLE = [name for name, _, needed_by in SECTIONS if needed_by is None or name == "saga"]
# A failure here leaves nothing for the sections after it.
ESSENTIAL = {"web", "saga start"}


def run(bench: Bench) -> int:
    started = time.monotonic()
    result = bench.result
    try:
        bench.start_services()
        bench.migrate()
        bench.setup_django()
        only = set(bench.args.only.split(",")) if bench.args.only else None
        for name, section, needed_by in SECTIONS:
            if only is not None and name not in only and not ((needed_by or set()) & only):
                continue
            try:
                section(bench)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                say(f"!! section {name} failed: {type(exc).__name__}: {exc}")
                traceback.print_exc()
                result.setdefault("errors", []).append(f"{name}: {type(exc).__name__}: {exc}"[:2000])
                if name in ESSENTIAL:
                    break
        memory.run(bench)
    finally:
        bench.shutdown()
    result["seconds"] = round(time.monotonic() - started, 1)
    result["loadavg_at_end"] = bench.loadavg()
    result["goals"] = goals(result)
    result["finished_at"] = datetime.now(UTC).isoformat()
    VAR.mkdir(parents=True, exist_ok=True)
    (VAR / "latest.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print_table(result)
    say(f"wrote {VAR / 'latest.json'} in {result['seconds']}s")
    return 1 if result.get("errors") else 0


def ensure_extras() -> None:
    """bench/requirements.txt (confluent-kafka for the raw pipe's second peer), installed once, best effort."""
    try:
        import confluent_kafka  # noqa: F401

        if (Path(PYTHON).parent / "py-spy").exists():
            return
    except ImportError:
        pass
    say("installing bench/requirements.txt (confluent-kafka, py-spy) ...")
    done = subprocess.run(
        [PYTHON, "-m", "pip", "install", "-q", "-r", str(ROOT / "bench" / "requirements.txt")],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        say("  could not install it; the confluent-kafka peer (and --py-spy) may be unavailable")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Conveyor's benchmark: prints a table and writes var/bench/latest.json"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run (about 6 minutes) with small counts and short windows; says so in its output",
    )
    parser.add_argument("--py-spy", action="store_true", help="record py-spy profiles of the saga's processes")
    parser.add_argument(
        "--rate", type=float, action="append", default=[], help="also measure placed→delivered at this orders/s"
    )
    parser.add_argument("--only", default="", help="comma-separated sections: " + ",".join(CHOOSABLE))
    args = parser.parse_args(argv)
    unknown = sorted(set(filter(None, args.only.split(","))) - set(CHOOSABLE))
    if unknown:
        parser.error(f"unknown section {', '.join(unknown)} in --only; choose among {', '.join(CHOOSABLE)}")
    os.chdir(ROOT)
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.ERROR)  # "not leader yet" on fresh topics is expected
    ensure_extras()

    def _term(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    bench = Bench(args)
    try:
        return run(bench)
    except KeyboardInterrupt:
        say("interrupted; everything the bench started is stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
