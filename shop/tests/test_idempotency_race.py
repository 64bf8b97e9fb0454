"""Concurrent retries with one Idempotency-Key (a client that times out and retries at once) place one
order, whichever request wins the race to insert the key."""

import threading

import pytest
from django.db import connections

from shop.models import IdempotencyKey, Order
from shop.services import place_order

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "shop"])


def test_concurrent_requests_with_one_key_place_one_order(products):
    results, errors = [], []
    start = threading.Barrier(6)

    def request():
        try:
            start.wait(10)
            placed = place_order(
                email="a@example.com",
                name="Ada",
                address="1 Road",
                lines=[{"sku": "MUG-001", "quantity": 1}],
                idempotency_key="one-key-many-retries",
            )
            results.append((str(placed.order.id), placed.token))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(set(results)) == 1 and len(results) == 6  # one order, one token, six answers
    assert Order.objects.using("shop").count() == 1
    assert IdempotencyKey.objects.using("shop").count() == 1
