"""JSON that a consumer can trust: RFC 8259 only, integers that survive any JSON reader, bounded depth."""

from typing import Any

import orjson

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32


class JsonRejected(ValueError):
    """The bytes are not JSON we accept; the message says which rule they broke."""


def dumps(value: Any) -> bytes:
    check(value)
    return orjson.dumps(value)


def loads(raw: bytes) -> Any:
    try:
        value = orjson.loads(raw)  # orjson refuses NaN, Infinity and invalid UTF-8
    except orjson.JSONDecodeError as exc:
        raise JsonRejected(f"not valid JSON: {exc}") from None
    check(value)
    return value


def check(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise JsonRejected(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise JsonRejected(f"integer {value} is beyond 2^53 and would lose precision")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise JsonRejected("NaN and Infinity are not JSON")
        if abs(value) > MAX_SAFE_INTEGER:  # orjson reads integers past 64 bits as floats
            raise JsonRejected(f"number {value!r} is beyond 2^53 and would lose precision")
    elif isinstance(value, dict):
        for item in value.values():
            check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check(item, depth + 1)
    else:
        raise JsonRejected(f"{type(value).__name__} is not a JSON type")
