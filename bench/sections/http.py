"""Section 5: daphne under 16 keep-alive connections, `GET /healthz` against `POST /api/orders`."""

from __future__ import annotations

from bench.common import PYTHON, cpu_seconds, order_fields, port_open, rnd, say, wait_until
from tests.support import free_port


def start_web(b) -> None:
    b.web_port = free_port()
    b.procs.start(
        "web",
        [PYTHON, "-m", "config.serve", "-b", "127.0.0.1", "-p", str(b.web_port), "config.asgi:application"],
    )
    wait_until(lambda: b.procs.check_alive("web") or port_open(b.web_port), 60, "daphne")


def run(b) -> None:
    import orjson

    from bench.http_load import load

    seconds = b.size["http_s"]
    say(f"5 HTTP on daphne, concurrency 16, {seconds}s each: GET /healthz, then POST /api/orders ...")
    web = b.procs.running["web"].pid

    def measured(*args, **kwargs) -> dict:
        # The web's own CPU per answered request: steadier than requests/s on a shared machine.
        cpu0 = cpu_seconds(web)
        result = load(*args, **kwargs)
        result["web_cpu_ms_per_request"] = rnd((cpu_seconds(web) - cpu0) * 1000 / max(result["requests"], 1), 2)
        return result

    load(b.web_port, "GET", "/healthz", seconds=1, concurrency=4)  # warm up
    trivial = measured(b.web_port, "GET", "/healthz", seconds=seconds)
    say(
        f"  /healthz {trivial['per_s']:.0f}/s p99 {trivial['latency_ms']['p99']} ms, "
        f"web {trivial['web_cpu_ms_per_request']} CPU-ms per request"
    )

    def order_body(i: int) -> bytes:
        return orjson.dumps(order_fields(i))

    load(b.web_port, "POST", "/api/orders", make_body=order_body, seconds=1, concurrency=4)  # warm up
    spies = b.py_spy({"web-post": b.procs.running["web"].pid}) if b.args.py_spy else []
    orders = measured(b.web_port, "POST", "/api/orders", make_body=order_body, seconds=seconds)
    b.stop_py_spy(spies)
    say(
        f"  POST /api/orders {orders['per_s']:.0f}/s p99 {orders['latency_ms']['p99']} ms {orders['statuses']}, "
        f"web {orders['web_cpu_ms_per_request']} CPU-ms per request"
    )
    # These orders only measure the web path: they do not enter the saga (its sections start empty).
    from django.utils import timezone

    from shop.models import OutboxMessage

    OutboxMessage.objects.using("shop").filter(sent_at__isnull=True).update(sent_at=timezone.now())
    b.result["sections"]["http"] = {"trivial": trivial, "orders": orders}
    b.result["http_orders_per_s"] = orders["per_s"]
    b.result["http_trivial_per_s"] = trivial["per_s"]
    b.result["http_orders_p99_ms"] = orders["latency_ms"]["p99"]
    b.result["http_trivial_p99_ms"] = trivial["latency_ms"]["p99"]
