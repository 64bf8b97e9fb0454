"""The cancel race, through the public interfaces only: place orders over the JSON API, ask to cancel each
at a random moment of its first seconds, wait until every order has ended, then hold what the API says
against what travelled on Kafka and against the stock the API shows.

It is what a new user can run against any Conveyor (`make run`, or the code of another version):

    SHIPPING_STEP_SECONDS=0.5 make run            # in one terminal
    .venv/bin/python -m tests.faults.cancel_race --orders 160 --url http://127.0.0.1:8000

and tests/faults/test_cancel_race.py runs it against real processes, with a consumer killed midway.
It prints each order the services disagree about and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

ENDED = {"delivered", "rejected", "cancelled"}
SHIPPED = {"conveyor.shipping.shipment.dispatched.v1", "conveyor.shipping.shipment.delivered.v1"}
CONFIRMED = "conveyor.shipping.shipment.cancelled.v1"


def call(method: str, url: str, body=None, token: str | None = None, timeout: float = 30) -> tuple[int, object]:
    if not url.startswith("http://"):
        raise ValueError(f"the race talks to a local server over http, not {url!r}")
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (checked)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (a local server)
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"null")
        except ValueError:
            return error.code, raw.decode(errors="replace")


@dataclass
class Race:
    url: str
    lines: dict[str, list[dict]] = field(default_factory=dict)  # order id -> its lines
    tokens: dict[str, str] = field(default_factory=dict)
    cancels: Counter = field(default_factory=Counter)  # answer status -> count
    errors: list[str] = field(default_factory=list)

    def place_and_cancel(
        self, *, skus: list[str], orders: int, rate: float, window: float, rng: random.Random, on_half=None
    ) -> None:
        """Place `orders` at `rate` per second; ask to cancel each at a random moment of its first `window`
        seconds. `on_half` is called once half the orders are placed (a test kills a consumer there)."""
        due: list[tuple[float, str]] = []
        lock = threading.Condition()
        done = threading.Event()

        def canceller(pool: ThreadPoolExecutor):
            while True:
                with lock:
                    while not due and not done.is_set():
                        lock.wait(0.05)
                    if not due and done.is_set():
                        return
                    at, order_id = due[0]
                    wait = at - time.monotonic()
                    if wait > 0:
                        lock.wait(min(wait, 0.05))
                        continue
                    heapq.heappop(due)
                pool.submit(self._cancel, order_id)

        with ThreadPoolExecutor(8) as pool:
            thread = threading.Thread(target=canceller, args=(pool,), daemon=True)
            thread.start()
            start = time.monotonic()
            for n in range(orders):
                time.sleep(max(0.0, start + n / rate - time.monotonic()))  # open loop: on a schedule
                lines = [{"sku": sku, "quantity": 1} for sku in rng.sample(skus, rng.randint(1, min(2, len(skus))))]
                body = {"email": "race@example.com", "name": "Race", "address": "1 Race Road", "lines": lines}
                status, answer = call("POST", f"{self.url}/api/orders", body)
                if status != 201:
                    self.errors.append(f"placing an order answered {status}: {answer}")
                    continue
                self.lines[answer["id"]], self.tokens[answer["id"]] = lines, answer["token"]
                with lock:
                    heapq.heappush(due, (time.monotonic() + rng.uniform(0, window), answer["id"]))
                    lock.notify()
                if on_half is not None and n == orders // 2:
                    on_half()
                if n and n % 50 == 0:
                    print(f"[race] {n}/{orders} orders placed", flush=True)
            done.set()
            thread.join()
        print(f"[race] {len(self.lines)} orders placed; cancel answers {dict(self.cancels)}", flush=True)

    def _cancel(self, order_id: str) -> None:
        status, answer = call("POST", f"{self.url}/api/orders/{order_id}/cancel", token=self.tokens[order_id])
        self.cancels[status] += 1
        if status not in (200, 202, 409):
            self.errors.append(f"cancelling {order_id} answered {status}: {answer}")

    def statuses(self) -> dict[str, str]:
        found = {}
        for order_id, token in self.tokens.items():
            status, answer = call("GET", f"{self.url}/api/orders/{order_id}", token=token)
            found[order_id] = answer["status"] if status == 200 else f"HTTP {status}"
        return found

    def wait_until_ended(self, timeout: float, nudge=None) -> dict[str, str]:
        deadline, statuses = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            statuses = self.statuses()
            open_ = [o for o, s in statuses.items() if s not in ENDED]
            print(f"[race] {len(statuses) - len(open_)}/{len(statuses)} orders ended", flush=True)
            if not open_:
                return statuses
            if nudge is not None:
                nudge()
            time.sleep(2)
        raise AssertionError(f"orders still open after {timeout:.0f}s: {Counter(statuses.values())}")


def availability(url: str) -> dict[str, int]:
    status, products = call("GET", f"{url}/api/products")
    assert status == 200, products
    return {p["sku"]: p["available"] for p in products}


def shipment_events(bootstrap: str, topic: str) -> dict[str, set[str]]:
    """Every event type on the shipments topic, per order (the record key), read from start to end."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        found: dict[str, set[str]] = defaultdict(set)
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end in 60 s")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    ce_type = dict(record.headers).get("ce_type", b"").decode()
                    found[(record.key or b"").decode()].add(ce_type)
        return found
    finally:
        consumer.close()


def disagreements(
    race: Race, statuses: dict[str, str], shipped: dict[str, set[str]], before: dict, after: dict
) -> list[str]:
    """What the API, the shipments topic and the stock say, held against each other."""
    found = []
    for order_id, status in statuses.items():
        events = shipped.get(order_id, set())
        if status == "cancelled" and events & SHIPPED:
            found.append(f"{order_id}: the API says cancelled, but shipping dispatched it ({sorted(events)})")
        if status == "delivered" and "conveyor.shipping.shipment.delivered.v1" not in events:
            found.append(f"{order_id}: the API says delivered, but shipping never delivered it")
        if CONFIRMED in events and events & SHIPPED:
            found.append(f"{order_id}: shipping confirmed its cancel and dispatched it too")
    delivered = Counter()
    for order_id, status in statuses.items():
        if status == "delivered":
            for line in race.lines[order_id]:
                delivered[line["sku"]] += line["quantity"]
    for sku in sorted({s for lines in race.lines.values() for line in lines for s in [line["sku"]]}):
        if after[sku] != before[sku] - delivered[sku]:
            found.append(
                f"{sku}: available {before[sku]} before, {after[sku]} after, but {delivered[sku]} units were "
                f"delivered (expected {before[sku] - delivered[sku]})"
            )
    return found


def settled_availability(url: str, skus, timeout: float = 30) -> dict[str, int]:
    """The storefront's availability once it stops moving (stock announcements are coalesced)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        now = {sku: n for sku, n in availability(url).items() if sku in skus}
        if now == last:
            return now
        last = now
        time.sleep(2)
    return last


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic-prefix", default="")
    parser.add_argument("--orders", type=int, default=160)
    parser.add_argument("--rate", type=float, default=20.0, help="orders per second")
    parser.add_argument("--window", type=float, default=3.0, help="each cancel comes within this many seconds")
    parser.add_argument("--skus", default="", help="comma-separated; default: the three most available")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else uuid.uuid4().int % 10_000
    print(f"[race] seed {seed}", flush=True)
    before = availability(args.url)
    skus = args.skus.split(",") if args.skus else sorted(before, key=before.get, reverse=True)[:3]
    race = Race(args.url)
    race.place_and_cancel(skus=skus, orders=args.orders, rate=args.rate, window=args.window, rng=random.Random(seed))
    statuses = race.wait_until_ended(600)
    after = settled_availability(args.url, set(skus))
    shipped = shipment_events(args.bootstrap, f"{args.topic_prefix}shipping.shipments")
    found = race.errors + disagreements(race, statuses, shipped, before, after)
    print(f"[race] {dict(Counter(statuses.values()))}")
    for line in found:
        print(f"DISAGREEMENT {line}")
    print(f"[race] {len(found)} disagreement(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
