"""CloudEvents 1.0 in Kafka binary content mode through the `cloudevents` Kafka binding.

The value is the JSON `data`; attributes travel as `ce_*` headers plus `content-type`; the Kafka key is
the aggregate id (`ce_subject`). Decoding is strict: anything a consumer cannot trust raises `Poison`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from . import schemas, strict_json
from .ids import new_event_id

CONTENT_TYPE = "application/json"
REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "ce_correlationid")


class Poison(ValueError):
    """An event no handler should see. `reason` is a short code for the dead-letter header."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class StrictJSONFormat(JSONFormat):
    """The binding's JSON format, with our strict reader and writer for `data`."""

    def write_data(self, data, datacontenttype):
        return strict_json.dumps(data)

    def read_data(self, body, datacontenttype):
        if datacontenttype != CONTENT_TYPE:
            raise Poison("bad-content-type", f"content-type is {datacontenttype!r}, expected {CONTENT_TYPE}")
        try:
            return strict_json.loads(body)
        except strict_json.JsonRejected as exc:
            raise Poison("bad-json", str(exc)) from None


FORMAT = StrictJSONFormat()


@dataclass(frozen=True)
class Envelope:
    """One event as a handler sees it."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime
    data: dict[str, Any]
    correlation_id: str
    causation_id: str | None = None
    # where it was read from (None before it reaches Kafka)
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    headers: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Message:
    """What goes on the wire."""

    topic: str
    key: bytes
    value: bytes
    headers: dict[str, str]


def encode(
    *,
    event_type: str,
    source_app: str,
    subject: str,
    data: dict[str, Any],
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> Message:
    """Validate `data` against its schema and build the Kafka message. Raises SchemaRejected."""
    schemas.validate(event_type, data)
    attributes = {
        "specversion": "1.0",
        "id": event_id or new_event_id(),
        "source": f"/conveyor/{source_app}",
        "type": event_type,
        "time": time or datetime.now(UTC),
        "subject": subject,
        "datacontenttype": CONTENT_TYPE,
        "correlationid": correlation_id or subject,
    }
    if causation_id:
        attributes["causationid"] = causation_id
    message = ce_kafka.to_binary(CloudEvent(attributes, data), FORMAT, key_mapper=lambda _e: subject)
    headers = {name: value.decode() for name, value in message.headers.items()}
    return Message(schemas.spec(event_type).topic, subject.encode(), message.value, headers)


def decode(
    *, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> Envelope:
    """Turn a Kafka record into an Envelope, or raise Poison saying why not."""
    raw_headers: dict[str, bytes] = {}
    for name, raw in headers or ():
        if not isinstance(raw, (bytes, bytearray)):
            raise Poison("bad-header", f"header {name!r} has no value")
        raw_headers[name] = bytes(raw)
    missing = [h for h in (*REQUIRED_HEADERS, "content-type") if h not in raw_headers]
    if missing:
        raise Poison("missing-header", f"missing {', '.join(missing)}")
    try:
        text_headers = {name: raw.decode() for name, raw in raw_headers.items()}
    except UnicodeDecodeError:
        raise Poison("bad-header", "a header is not UTF-8") from None
    if text_headers["ce_specversion"] != "1.0":
        raise Poison("bad-specversion", f"ce_specversion {text_headers['ce_specversion']!r} is not 1.0")
    event_type = text_headers["ce_type"]
    try:
        schemas.spec(event_type)
    except schemas.UnknownEventType as exc:
        raise Poison("unknown-type", str(exc)) from None
    try:
        event = ce_kafka.from_binary(ce_kafka.KafkaMessage(raw_headers, key, value or b""), FORMAT)
    except Poison:
        raise
    except (BaseCloudEventException, ValueError, TypeError) as exc:
        raise Poison("bad-envelope", str(exc)) from None
    data = event.get_data()
    if not isinstance(data, dict):
        raise Poison("bad-json", "data is not a JSON object")
    try:
        schemas.validate(event_type, data)
    except schemas.SchemaRejected as exc:
        raise Poison("schema", str(exc)) from None
    try:
        uuid.UUID(event.get_id())
    except ValueError:
        raise Poison("bad-envelope", f"ce_id {event.get_id()!r} is not a UUID") from None
    return Envelope(
        id=event.get_id(),
        type=event_type,
        source=event.get_source(),
        subject=event.get_subject(),
        time=event.get_time(),
        data=data,
        correlation_id=event.get_extension("correlationid"),
        causation_id=event.get_extension("causationid"),
        topic=topic,
        partition=partition,
        offset=offset,
        headers=text_headers,
    )
