"""`manage.py run_consumer <service>` with one bench-only knob: `--no-inbox` runs the very same consumer
with the inbox switched off (no lookup, no insert), to price the inbox (section 6). Never used by the app.

    python bench/inventory_hop.py inventory --no-inbox
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from eventbus.runner import ConsumerRunner  # noqa: E402
from eventbus.service import service  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("service")
    parser.add_argument("--no-inbox", action="store_true")
    args = parser.parse_args()
    svc = service(args.service)
    if args.no_inbox:
        svc.inbox = None  # as a service without an inbox (the dashboard's) runs: no lookup, no insert
    runner = ConsumerRunner(svc)
    runner.install_signal_handlers()
    runner.run()


if __name__ == "__main__":
    main()
