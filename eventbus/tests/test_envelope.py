import uuid

import pytest

from eventbus import envelope, schemas, strict_json
from eventbus.envelope import Poison

ORDER_ID = str(uuid.uuid4())
PLACED = {
    "order_id": ORDER_ID,
    "email": "a@example.com",
    "name": "Ada",
    "address": "1 Loop Road",
    "lines": [{"sku": "MUG-001", "quantity": 2, "unit_price": "12.50"}],
    "total": "25.00",
}


def encoded(**overrides):
    args = dict(event_type="conveyor.shop.order.placed.v1", source_app="shop", subject=ORDER_ID, data=PLACED)
    args.update(overrides)
    return envelope.encode(**args)


def as_record(message, **header_changes):
    headers = {**message.headers, **header_changes}
    return dict(
        topic="shop.orders",
        partition=0,
        offset=7,
        key=message.key,
        value=message.value,
        headers=[(k, v.encode()) for k, v in headers.items() if v is not None],
    )


def test_encode_sets_every_cloudevents_header_of_the_contract():
    message = encoded(causation_id="c0ffee00-0000-4000-8000-000000000000")
    h = message.headers
    assert h["ce_specversion"] == "1.0"
    assert uuid.UUID(h["ce_id"])
    assert h["ce_source"] == "/conveyor/shop"
    assert h["ce_type"] == "conveyor.shop.order.placed.v1"
    assert h["ce_time"].endswith("Z") and "T" in h["ce_time"]
    assert h["ce_subject"] == ORDER_ID
    assert h["content-type"] == "application/json"
    assert h["ce_correlationid"] == ORDER_ID
    assert h["ce_causationid"] == "c0ffee00-0000-4000-8000-000000000000"
    assert message.key == ORDER_ID.encode()
    assert message.topic == "shop.orders"
    assert strict_json.loads(message.value) == PLACED


def test_decode_round_trips():
    message = encoded()
    event = envelope.decode(**as_record(message))
    assert event.type == "conveyor.shop.order.placed.v1"
    assert event.data == PLACED
    assert event.subject == ORDER_ID and event.correlation_id == ORDER_ID
    assert (event.topic, event.partition, event.offset) == ("shop.orders", 0, 7)


def test_producer_side_schema_rejection():
    with pytest.raises(schemas.SchemaRejected):
        encoded(data={**PLACED, "lines": []})
    with pytest.raises(schemas.SchemaRejected):
        encoded(data={**PLACED, "total": 25})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ce_type": None}, "missing-header"),
        ({"ce_id": None}, "missing-header"),
        ({"content-type": None}, "missing-header"),
        ({"ce_specversion": "0.3"}, "bad-specversion"),
        ({"ce_type": "conveyor.shop.order.placed.v9"}, "unknown-type"),
        ({"content-type": "text/plain"}, "bad-content-type"),
        ({"ce_id": "not-a-uuid"}, "bad-envelope"),
    ],
)
def test_bad_headers_are_poison_with_a_reason(change, reason):
    with pytest.raises(Poison) as caught:
        envelope.decode(**as_record(encoded(), **change))
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xfe garbage", "bad-json"),
        (b'{"order_id": NaN}', "bad-json"),
        (b'{"a": Infinity}', "bad-json"),
        (b'{"order_id": 9007199254740993}', "bad-json"),
        (b"[" * 100 + b"]" * 100, "bad-json"),
        (b"[1, 2]", "bad-json"),
        (b'{"order_id": "x"}', "schema"),
        (b"", "bad-json"),
    ],
)
def test_bad_payloads_are_poison_with_a_reason(value, reason):
    record = as_record(encoded())
    record["value"] = value
    with pytest.raises(Poison) as caught:
        envelope.decode(**record)
    assert caught.value.reason == reason


def test_strict_json_refuses_what_other_readers_would_mangle():
    for bad in (
        float("nan"),
        float("inf"),
        2**60,
        {"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
    ):
        with pytest.raises(strict_json.JsonRejected):
            strict_json.dumps(bad)
    assert strict_json.loads(b'{"n": 9007199254740991}') == {"n": 9007199254740991}
