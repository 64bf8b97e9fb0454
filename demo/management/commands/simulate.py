import random
import statistics
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from shop import selectors, services


class Command(BaseCommand):
    help = "Place N orders at R per second through the same service as the API, then report how they ended."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=50)
        parser.add_argument("--rate", type=float, default=5.0, help="orders per second")
        parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the orders to finish")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, orders, rate, wait, seed, **options):
        if orders < 1 or rate <= 0:
            raise CommandError("--orders must be at least 1 and --rate above 0")
        products = selectors.catalogue()
        if not products:
            raise CommandError("the catalogue is empty: run `python manage.py seed_demo` first")
        rng = random.Random(seed)
        placed = []
        started = time.monotonic()
        for i in range(orders):
            due = started + i / rate
            time.sleep(max(0.0, due - time.monotonic()))
            lines = [{"sku": p.sku, "quantity": rng.randint(1, 3)} for p in rng.sample(products, rng.randint(1, 3))]
            result = services.place_order(
                email=f"sim{i}@example.com", name=f"Simulated Customer {i}", address=f"{i} Event Street", lines=lines
            )
            placed.append(result.order.id)
            self._progress("placing", i + 1, orders)
        self.stdout.write("")
        deadline = time.monotonic() + wait
        finished = {}
        while time.monotonic() < deadline:
            finished = selectors.terminal_orders(placed)
            self._progress("finishing", len(finished), orders)
            if len(finished) == orders:
                break
            time.sleep(0.5)
        self.stdout.write("")
        self._summary(placed, finished, wait)

    def _progress(self, what: str, done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total)
        sys.stdout.write(f"\r{what:>9} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        sys.stdout.flush()

    def _summary(self, placed, finished, wait) -> None:
        statuses = [status for status, _ in finished.values()]
        latencies = sorted(ms for status, ms in finished.values() if status == "delivered" and ms is not None)
        self.stdout.write(f"placed     {len(placed)}")
        for status in ("delivered", "rejected", "cancelled"):
            self.stdout.write(f"{status:<10} {statuses.count(status)}")
        unfinished = len(placed) - len(finished)
        if unfinished:
            self.stdout.write(
                self.style.WARNING(
                    f"unfinished {unfinished} after {wait:.0f}s — are the consumers and the Celery worker running "
                    "(`make run` starts them)?"
                )
            )
        if latencies:
            p50 = statistics.median(latencies)
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            self.stdout.write(f"placed→delivered p50 {p50:.0f} ms, p99 {p99:.0f} ms")
