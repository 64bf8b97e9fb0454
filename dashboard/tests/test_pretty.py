"""The tail's pretty-printed payloads: orjson's text is the stdlib's for the JSON an event can carry."""

import json

import pytest

from dashboard.handlers import pretty, pretty_lenient
from eventbus import strict_json


@pytest.mark.parametrize(
    "data",
    [
        {"order_id": "0190f1a8-1111-7222-8333-444455556666", "lines": [{"sku": "MUG-001", "quantity": 2}]},
        {"b": {"z": [], "a": {}}, "a": [1, -2, 2**53 - 1, 0.5, True, False, None, "x"]},
        {"name": "Zoë Ødegård", "address": "東京都 1-2-3", "note": 'tab\t quote" slash\\ nl\n \u0001'},
        {},
    ],
)
def test_pretty_writes_what_the_stdlib_writes(data):
    data = strict_json.loads(strict_json.dumps(data))  # what a decoded event carries
    assert pretty(data) == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def test_lenient_json_of_an_undecodable_record_keeps_what_orjson_refuses():
    data = json.loads('{"big": 123456789012345678901234567890, "n": NaN}')
    assert pretty_lenient(data) == '{\n  "big": 123456789012345678901234567890,\n  "n": NaN\n}'
