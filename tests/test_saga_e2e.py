"""The order saga end to end with real processes: daphne, every consumer, a Celery worker, the broker,
Redis and the SQLite test databases (ISSUE 4 tests)."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from broker.launch import Cluster
from inventory import services as inventory
from inventory.models import Reservation, StockItem
from shop.models import OutboxMessage, Product
from tests.support import PYTHON, ROOT, free_port, free_port_pair, http_json, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]
BUYER = {"email": "ada@example.com", "name": "Ada Lovelace", "address": "12 Analytical Row, London"}


def product(sku: str, units: int, price: str = "10.00") -> str:
    Product.objects.using("shop").create(sku=sku, name=sku.title(), price=price, available=units)
    inventory.set_stock(sku, units)
    return sku


def start_all(stack, *, courier: bool = True, inventories: int = 1) -> str:
    port = free_port()
    stack.web(port)
    stack.consumer("shop")
    for i in range(inventories):
        stack.consumer("inventory", f"inventory-{i}")
    stack.consumer("shipping")
    if courier:
        stack.celery()
    return f"http://127.0.0.1:{port}"


def place(base: str, sku: str, quantity: int):
    return http_json("POST", f"{base}/api/orders", {**BUYER, "lines": [{"sku": sku, "quantity": quantity}]})


def order(base: str, placed: dict) -> dict:
    status, body = http_json(
        "GET", f"{base}/api/orders/{placed['id']}", headers={"Authorization": f"Bearer {placed['token']}"}
    )
    assert status == 200, body
    return body


def reach(base: str, placed: dict, status: str, timeout: float = 60) -> dict:
    return wait_for(
        lambda: (o := order(base, placed))["status"] == status and o, timeout, f"order {placed['id']} to be {status}"
    )


def test_an_order_placed_through_the_api_is_delivered(stack):
    sku = product("E2E-MUG", 10)
    base = start_all(stack)
    status, placed = place(base, sku, 2)
    assert status == 201 and placed["status"] == "placed" and placed["token"], placed
    delivered = reach(base, placed, "delivered")
    assert [h["status"] for h in delivered["history"]] == ["placed", "reserved", "packed", "dispatched", "delivered"]
    assert delivered["lines"][0]["sku"] == sku and delivered["lines"][0]["quantity"] == 2
    wait_for(lambda: StockItem.objects.using("inventory").get(sku=sku).on_hand == 8, 30, "the stock to leave")
    assert StockItem.objects.using("inventory").get(sku=sku).reserved == 0
    wait_for(lambda: Product.objects.using("shop").get(sku=sku).available == 8, 30, "the storefront's availability")


def test_over_quantity_is_rejected_and_nothing_stays_reserved(stack):
    sku = product("E2E-HOODIE", 3)
    base = start_all(stack)
    status, placed = place(base, sku, 5)
    assert status == 201
    rejected = reach(base, placed, "rejected")
    assert [h["status"] for h in rejected["history"]] == ["placed", "rejected"]
    assert StockItem.objects.using("inventory").get(sku=sku).reserved == 0
    assert not Reservation.objects.using("inventory").filter(order_id=placed["id"]).exists()


def test_a_cancel_before_dispatch_is_confirmed_by_shipping_and_releases_the_stock(stack):
    sku = product("E2E-CAP", 5)
    stack.env["SHIPPING_STEP_SECONDS"] = "60"  # steps wait for Celery (none runs), not taken at once
    base = start_all(stack, courier=False)  # no courier: the shipment waits, ready, at `reserved`
    _, placed = place(base, sku, 4)
    reach(base, placed, "reserved")
    assert StockItem.objects.using("inventory").get(sku=sku).reserved == 4
    status, body = http_json(
        "POST", f"{base}/api/orders/{placed['id']}/cancel", headers={"Authorization": f"Bearer {placed['token']}"}
    )
    assert status == 202 and body["status"] == "reserved" and body["cancel"]["state"] == "requested", body
    answered = reach(base, placed, "cancelled")  # shipping confirmed: the order ends cancelled
    assert answered["cancel"]["state"] == "confirmed"
    wait_for(lambda: StockItem.objects.using("inventory").get(sku=sku).reserved == 0, 30, "the compensation")
    assert Reservation.objects.using("inventory").get(order_id=placed["id"]).status == "released"
    status, body = http_json(
        "POST", f"{base}/api/orders/{placed['id']}/cancel", headers={"Authorization": f"Bearer {placed['token']}"}
    )
    assert status == 409, body


def test_fifty_concurrent_orders_for_ten_units_sell_exactly_ten(stack):
    sku = product("E2E-LAMP", 10)
    base = start_all(stack, inventories=2)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: place(base, sku, 1), range(50)))
    assert all(status == 201 for status, _ in results), results
    placed = [body for _, body in results]
    finals = [
        wait_for(
            lambda p=p: order(base, p)["status"] in {"delivered", "rejected"} and order(base, p)["status"], 90, "an end"
        )
        for p in placed
    ]
    assert finals.count("delivered") == 10 and finals.count("rejected") == 40
    wait_for(lambda: StockItem.objects.using("inventory").get(sku=sku).on_hand == 0, 30, "all ten units to leave")
    assert StockItem.objects.using("inventory").get(sku=sku).reserved == 0


@pytest.fixture
def own_broker(tmp_path, stack):
    cluster = Cluster(nodes_count=1, base_port=free_port_pair(), data_dir=tmp_path / "kafka", log_dir=tmp_path / "log")
    cluster.start()
    cluster.wait_ready()
    stack.env["KAFKA_BOOTSTRAP_SERVERS"] = cluster.bootstrap_servers
    yield cluster
    cluster.stop()


def test_an_order_placed_while_the_broker_is_down_is_delivered_after_it_returns(stack, own_broker):
    sku = product("E2E-SOCKS", 10)
    base = start_all(stack)
    wait_for(lambda: "partitions assigned: " in stack.log("shipping"), 60, "the consumers to join the new broker")
    own_broker.stop()
    status, placed = place(base, sku, 1)
    assert status == 201, placed  # taken with Kafka down
    assert OutboxMessage.objects.using("shop").filter(sent_at__isnull=True).count() == 1
    own_broker.start()
    own_broker.wait_ready()
    reach(base, placed, "delivered", timeout=120)


def test_several_services_in_one_consumer_process_run_the_saga_and_stop_cleanly(stack):
    sku = product("E2E-ONE", 5)
    port = free_port()
    stack.web(port)
    base = f"http://127.0.0.1:{port}"
    together = [PYTHON, "manage.py", "run_consumer", "shop", "inventory", "shipping"]
    process = stack.start("consumers", together)
    stack.celery()
    _, placed = place(base, sku, 2)
    reach(base, placed, "delivered")
    log = stack.log("consumers")
    for name in ("shop", "inventory", "shipping"):  # each service with its own consumer group
        assert f"as group {stack.env['KAFKA_TOPIC_PREFIX']}conveyor.{name}" in log, log[-2000:]
    # one relay (one producer, one thread) holds every hosted service's lease
    owners = {name: _relay_owners(name) for name in ("shop", "inventory", "shipping")}
    assert len(set(owners.values())) == 1 and f":{process.pid}:" in owners["shop"][0], owners
    assert stack.stop("consumers") == 0 and process.returncode == 0
    assert not any(_relay_owners(name) for name in ("shop", "inventory", "shipping"))  # released on a clean stop
    assert "shop: stopped cleanly" in stack.log("consumers") and "shipping: stopped cleanly" in stack.log("consumers")


def _relay_owners(name: str) -> tuple[str, ...]:
    from eventbus.service import service

    svc = service(name)
    return tuple(svc.lease.objects.using(svc.database).filter(name="relay").values_list("owner", flat=True))


def test_run_consumer_names_the_services_it_knows_when_given_another():
    import subprocess

    done = subprocess.run(
        [PYTHON, "manage.py", "run_consumer", "shop", "warehouse"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "no service named 'warehouse'; known: shop, inventory, shipping, dashboard" in done.stderr
