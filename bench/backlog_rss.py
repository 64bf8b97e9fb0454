"""The dashboard consumer's peak RSS while it drains a backlog, by its consumer's `max_partition_fetch_bytes`.

Every catalogue topic gets `--per-topic` enveloped OrderPlaced events (the dashboard records any event);
then `run_consumer dashboard` starts on them, once per value of `--fetch` ("default": the project's own
setting), each on fresh topics and databases. Prints the peak RSS (`VmHWM`), the seconds until every event
is in the read model and the process's CPU seconds:

    .venv/bin/python bench/backlog_rss.py --fetch default,1048576,default,1048576
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PYTHON, copy_sqlite, cpu_seconds, peak_rss_mb, say, wait_until
from bench.harness import Bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-topic", type=int, default=10_000)
    parser.add_argument("--fetch", default="default,1048576", help="comma-separated bytes, or 'default'")
    args = parser.parse_args()
    bench = Bench(types.SimpleNamespace(quick=False, py_spy=False, only="backlog_rss"))
    try:
        bench.start_services()
        bench.migrate()
        bench.setup_django()
        from eventbus import schemas

        messages, _ = bench.order_messages(args.per_topic, duplicates=0)
        topics = schemas.all_topics()
        for k, fetch in enumerate(args.fetch.split(",")):
            name = f"backlog{k}"
            copy_sqlite(bench.db_dir / "template", bench.db_dir / name)
            prefix = f"{bench.prefix}{name}."
            bench.ensure_topics(prefix)
            for topic in topics:
                bench.produce(prefix + topic, messages)
            argv = [PYTHON, "bench/inventory_hop.py", "dashboard"]
            if fetch != "default":
                argv += ["--partition-fetch-bytes", fetch]
            bench.procs.consumer("dashboard", name, bench.env_for(name, prefix), argv)
            started, pid = time.monotonic(), bench.procs.running[name].pid
            total = args.per_topic * len(topics)
            database = bench.db_dir / name / "dashboard.sqlite3"

            def recorded(database=database, total=total) -> bool:
                with sqlite3.connect(database, timeout=30) as conn:
                    return conn.execute("SELECT count(*) FROM dashboard_eventlog").fetchone()[0] >= total

            wait_until(recorded, 600, f"{name}: {total} events in the read model", interval=0.5)
            say(
                f"max_partition_fetch_bytes {fetch}: {total} events, peak RSS {peak_rss_mb(pid)} MB, "
                f"{time.monotonic() - started:.1f} s, {cpu_seconds(pid):.1f} CPU-s"
            )
            bench.procs.stop(name)
    finally:
        bench.shutdown()


if __name__ == "__main__":
    main()
