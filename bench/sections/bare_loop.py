"""Section 2: the bare loop (`bench/bare_loop.py`), one hop doing a saga hop's work without our framework.

Two runs, each on a database and topics of its own:
- drain: a backlog of enveloped OrderPlaced events (+10 % redeliveries) as fast as it goes (events/s, the
  historical figure);
- paced: the same events offered at a fixed rate, by default the saga's delivery rate at half its capacity,
  which gives `bare_cpu_ms_per_delivery`. That is the four groups' deliveries read by one loop, so its
  batches are larger than each saga consumer's; `records_per_batch` says how large.

CPU per delivery counts the loop's process and Kafka's JVM(s) over the run, as the saga's figure does.
The feed's own produce requests are the load generator's: their JVM cost is measured on its own (the same
feed at the same rate into a topic nobody reads) and taken out, and reported apart.
"""

from __future__ import annotations

import time

from bench.common import PYTHON, copy_sqlite, say, wait_until
from bench.harness import result_line


def run(b) -> None:
    count = b.size["hop"]
    say(
        f"2 bare loop: decode+validate → one transaction (inbox, state, outbox rows) → relay → commit; "
        f"{count} orders + 10% dup"
    )
    drain = one_run(b, "bare-drain", count, rate=None)
    b.result["sections"]["bare_loop"] = drain
    b.result["bare_loop_events_per_s"] = drain["events_per_s"]
    b.result["bare_loop_cpu_ms_per_event"] = drain["cpu_ms_per_event"]
    say(
        f"  drain: {drain['events_per_s']:.0f} events/s, loop {drain['cpu_ms_per_event']} CPU-ms/event, "
        f"with Kafka {drain['cpu_ms_per_delivery']}"
    )
    rate = b.result.get("saga_deliveries_per_s_at_half") or b.size["bare_rate"]
    seconds = b.size["bare_paced_s"]
    paced = one_run(b, "bare-paced", max(200, int(rate * seconds)), rate=rate)
    b.result["sections"]["bare_loop_paced"] = paced
    b.result["bare_cpu_ms_per_delivery"] = paced["cpu_ms_per_delivery"]
    say(
        f"  paced at {rate:.0f} deliveries/s, {paced['records_per_batch']} records per batch: loop "
        f"{paced['cpu_ms_per_event']} + Kafka "
        f"{paced['kafka_cpu_ms_per_delivery']} = {paced['cpu_ms_per_delivery']} CPU-ms per delivery "
        f"(the feed's Kafka share taken out: {paced.get('feed_kafka_cpu_ms_per_event_before_after')} before/after; "
        f"with it {paced.get('cpu_ms_per_delivery_with_feed')})"
    )


def one_run(b, name: str, count: int, rate: float | None) -> dict:
    copy_sqlite(b.db_dir / "template", b.db_dir / name)
    source, target = f"{b.prefix}{name}.in", f"{b.prefix}{name}.out"
    b.create_topics([source, target, f"{b.prefix}{name}.feedonly"])
    messages, _ = b.order_messages(count)
    feed_kafka = None
    if rate:
        feed_kafka, feed_seconds = feed_alone(b, f"{b.prefix}{name}.feedonly", messages, rate)
    b.procs.start(
        name,
        [PYTHON, "bench/bare_loop.py", "--in", source, "--out", target, "--events", str(len(messages))],
        b.env_for(name),
    )
    log = b.procs.logdir / f"{name}.log"
    wait_until(lambda: b.procs.check_alive(name) or "READY" in log.read_text(), 60, "the bare loop")
    k0, t0 = b.kafka_cpu(), time.monotonic()
    if rate:
        b.feed(source, messages, rate)
    else:
        b.produce(source, messages)
    b.procs.running[name].wait(300)
    kafka = b.kafka_cpu() - k0
    wall = time.monotonic() - t0
    b.procs.stop(name)
    if rate:  # once before and once after: the machine's noise moves it
        after, _ = feed_alone(b, f"{b.prefix}{name}.feedonly", messages, rate)
        result_feed = [feed_kafka, after]
        feed_kafka = (feed_kafka + after) / 2
    result = result_line(log)
    deliveries = result["events"]
    if feed_kafka is not None:
        result["cpu_ms_per_delivery_with_feed"] = round((result["cpu_seconds"] + kafka) * 1000 / deliveries, 3)
        kafka -= feed_kafka * len(messages)
        result["feed_kafka_cpu_ms_per_event"] = round(feed_kafka * 1000, 3)
        result["feed_kafka_cpu_ms_per_event_before_after"] = [round(x * 1000, 3) for x in result_feed]
        result["achieved_rate"] = round(len(messages) / feed_seconds, 1)
    result["rate"] = round(rate, 1) if rate else None
    result["records_per_batch"] = round(deliveries / max(result["batches"], 1), 1)
    result["wall_seconds"] = round(wall, 2)
    result["kafka_cpu_ms_per_delivery"] = round(kafka * 1000 / deliveries, 3)
    result["cpu_ms_per_delivery"] = round((result["cpu_seconds"] + kafka) * 1000 / deliveries, 3)
    result["loadavg"] = b.loadavg()
    return result


def feed_alone(b, topic: str, messages, rate: float) -> tuple[float, float]:
    """The feed alone, into a topic nobody reads: Kafka's CPU seconds per record it costs, and its seconds."""
    k0, t0 = b.kafka_cpu(), time.monotonic()
    b.feed(topic, messages, rate)
    return (b.kafka_cpu() - k0) / len(messages), time.monotonic() - t0
