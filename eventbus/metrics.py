"""Prometheus metrics of the event bus. In several processes they are aggregated through
PROMETHEUS_MULTIPROC_DIR (set by `make run`), so the web's /metrics shows the consumers' figures too."""

from prometheus_client import Counter, Gauge, Histogram

events_handled = Counter("conveyor_events_handled_total", "Events applied by a consumer group", ["group", "type"])
events_duplicate = Counter("conveyor_events_duplicate_total", "Redelivered events skipped by the inbox", ["group"])
dead_letters = Counter("conveyor_dead_letters_total", "Events sent to a dead-letter topic", ["group"])
offsets_out_of_range = Counter(
    "conveyor_offsets_out_of_range_total",
    "Committed offsets found deleted by retention (the consumer stops, or skips with a marker)",
    ["group", "topic"],
)
offsets_skipped = Counter(
    "conveyor_offsets_skipped_total", "Offsets skipped after a lost committed offset", ["group", "topic"]
)
consumer_retries = Counter("conveyor_consumer_retries_total", "Batches retried after a transient error", ["group"])
handler_seconds = Histogram(
    "conveyor_handler_seconds",
    "Time spent in handlers per event",
    ["group", "type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
consumer_lag = Gauge(
    "conveyor_consumer_lag",
    "Records behind the high watermark",
    ["group", "topic", "partition"],
    multiprocess_mode="livesum",
)


def record_batch(group: str, result, lag_by_partition: dict) -> None:
    for event_type, count in result.by_type.items():
        events_handled.labels(group, event_type).inc(count)
        seconds = result.handler_seconds.get(event_type, 0.0)
        handler_seconds.labels(group, event_type).observe(seconds / max(count, 1))
    if result.duplicates:
        events_duplicate.labels(group).inc(result.duplicates)
    for (topic, partition), lag in lag_by_partition.items():
        consumer_lag.labels(group, topic, str(partition)).set(lag)


def outbox_and_lag_text() -> bytes:
    """Gauges read at scrape time from the databases: outbox rows pending and the oldest one's age."""
    from django.conf import settings
    from django.db.models import Min
    from django.utils import timezone

    from .service import service

    lines = [
        "# HELP conveyor_outbox_pending Outbox rows not yet on Kafka",
        "# TYPE conveyor_outbox_pending gauge",
    ]
    ages = [
        "# HELP conveyor_outbox_oldest_age_seconds Age of the oldest unsent outbox row",
        "# TYPE conveyor_outbox_oldest_age_seconds gauge",
    ]
    # A live relay renews its lease every few seconds (eventbus/relay.py); none unexpired means no relay runs.
    relays = [
        "# HELP conveyor_relay_up 1 when a relay holds the app's outbox lease (it is alive), 0 when none does",
        "# TYPE conveyor_relay_up gauge",
    ]
    for name in settings.CONVEYOR_SERVICES:
        svc = service(name)
        try:
            pending = svc.outbox.objects.using(svc.database).filter(sent_at__isnull=True)
            stats = pending.aggregate(oldest=Min("created_at"))
            count = pending.count()
            leases = svc.lease.objects.using(svc.database)
            relay_up = leases.filter(name="relay", expires_at__gt=timezone.now()).exists()
        except Exception:  # noqa: S112 (a database that is away shows in /readyz; /metrics still answers)
            continue
        age = (timezone.now() - stats["oldest"]).total_seconds() if stats["oldest"] else 0.0
        lines.append(f'conveyor_outbox_pending{{app="{name}"}} {count}')
        ages.append(f'conveyor_outbox_oldest_age_seconds{{app="{name}"}} {age:.3f}')
        relays.append(f'conveyor_relay_up{{app="{name}"}} {int(relay_up)}')
    return ("\n".join(lines + ages + relays) + "\n").encode()


websocket_clients = Gauge(
    "conveyor_websocket_clients", "Open websocket connections", ["route"], multiprocess_mode="livesum"
)
