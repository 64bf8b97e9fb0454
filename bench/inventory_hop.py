"""`manage.py run_consumer <service>` with bench-only knobs, never used by the app: `--no-inbox` runs the very
same consumer with the inbox switched off (no lookup, no insert), to price the inbox (section 6);
`--partition-fetch-bytes` sets its consumer's `max_partition_fetch_bytes` (bench/backlog_rss.py).

    python bench/inventory_hop.py inventory --no-inbox
    python bench/inventory_hop.py dashboard --partition-fetch-bytes 1048576
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from eventbus import kafka_io  # noqa: E402
from eventbus.runner import ConsumerRunner  # noqa: E402
from eventbus.service import service  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("service")
    parser.add_argument("--no-inbox", action="store_true")
    parser.add_argument("--partition-fetch-bytes", type=int)
    args = parser.parse_args()
    svc = service(args.service)
    if args.no_inbox:
        svc.inbox = None  # as a service without an inbox (the dashboard's) runs: no lookup, no insert
    if args.partition_fetch_bytes:
        kafka_io.make_consumer = partial(kafka_io.make_consumer, max_partition_fetch_bytes=args.partition_fetch_bytes)
    runner = ConsumerRunner(svc)
    runner.install_signal_handlers()
    runner.run()


if __name__ == "__main__":
    main()
