"""The event catalogue: one JSON Schema per event type under `schemas/`, compiled once.

The schema files are the published language between the apps (read by producer and consumer alike,
and by docs/asyncapi.yaml); each carries `x-topic`, the topic its type travels on.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson
from django.conf import settings

SCHEMA_DIR = Path(settings.BASE_DIR) / "schemas"


class SchemaRejected(ValueError):
    pass


class UnknownEventType(LookupError):
    pass


@dataclass(frozen=True)
class EventSpec:
    type: str
    topic: str
    schema: dict
    validate: Callable[[Any], Any]


@cache
def catalogue() -> dict[str, EventSpec]:
    specs = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        schema = orjson.loads(path.read_bytes())
        specs[path.stem] = EventSpec(path.stem, schema["x-topic"], schema, fastjsonschema.compile(schema))
    return specs


def spec(event_type: str) -> EventSpec:
    try:
        return catalogue()[event_type]
    except KeyError:
        raise UnknownEventType(f"unknown event type or version {event_type!r}") from None


def validate(event_type: str, data: Any) -> None:
    try:
        spec(event_type).validate(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise SchemaRejected(f"{event_type}: {exc.message}") from None


def topic_name(topic: str) -> str:
    """The physical topic; a prefix keeps test runs that share one broker apart."""
    return f"{settings.KAFKA_TOPIC_PREFIX}{topic}"


def all_topics() -> list[str]:
    return sorted({s.topic for s in catalogue().values()})
