"""docs/asyncapi.yaml is valid AsyncAPI 3 structure and lists exactly the event types of the code."""

import importlib
from pathlib import Path

import fastjsonschema
import yaml
from django.conf import settings

from eventbus import asyncapi, schemas
from eventbus.events import Event
from eventbus.service import ALL_EVENTS, service

DOC = Path(settings.BASE_DIR) / "docs" / "asyncapi.yaml"


def _resolve(doc: dict, ref: str):
    node = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def types_in_code() -> set[str]:
    published = set()
    for app in settings.BOUNDED_APPS:
        module = importlib.import_module(f"{app}.events") if importlib.util.find_spec(f"{app}.events") else None
        for value in vars(module).values() if module else ():
            if isinstance(value, type) and issubclass(value, Event) and "TYPE" in vars(value):
                published.add(value.TYPE)
    handled = {t for name in settings.CONVEYOR_SERVICES for t in service(name).handlers if t != ALL_EVENTS}
    assert handled <= published, f"handlers for types nobody publishes: {handled - published}"
    return published


def test_the_document_is_generated_from_the_catalogue():
    assert DOC.read_text() == asyncapi.as_yaml(), "docs/asyncapi.yaml is stale: run `python manage.py asyncapi`"


def test_the_document_is_valid_asyncapi_3():
    doc = yaml.safe_load(DOC.read_text())
    assert doc["asyncapi"].startswith("3.")
    assert doc["info"]["title"] and doc["info"]["version"]
    for name, channel in doc["channels"].items():
        assert channel["address"] == name
        for ref in channel["messages"].values():
            message = _resolve(doc, ref["$ref"])
            fastjsonschema.compile(message["payload"])  # a valid JSON Schema
            _resolve(doc, message["headers"]["$ref"])
    for operation in doc["operations"].values():
        assert operation["action"] in {"send", "receive"}
        _resolve(doc, operation["channel"]["$ref"])


def test_code_schemas_and_document_name_the_same_event_types():
    doc = yaml.safe_load(DOC.read_text())
    in_doc = {m["name"] for m in doc["components"]["messages"].values()}
    assert types_in_code() == set(schemas.catalogue()) == in_doc
    assert {s.topic for s in schemas.catalogue().values()} == set(doc["channels"])
