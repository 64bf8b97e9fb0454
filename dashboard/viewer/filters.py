"""What a search looks for, parsed from query parameters, and a matcher fast enough to run on every record
a search scans (raw bytes first; JSON is parsed only for a field filter, and only when the raw value can
contain the wanted text)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson


class BadFilter(ValueError):
    """A filter the viewer cannot run; the message says how to write it."""


@dataclass(frozen=True)
class Filter:
    text: str = ""  # anywhere in key, header values or payload, case-insensitive
    key: str = ""  # the record key, exactly
    ce_type: str = ""  # the ce_type header, exactly
    header: tuple[str, str] | None = None  # (name, value), exactly
    field: tuple[tuple[str, ...], str] | None = None  # (JSON path, value as text)

    @property
    def active(self) -> bool:
        return bool(self.text or self.key or self.ce_type or self.header or self.field)

    def matcher(self):
        """A function (key, value, headers) → bool for eventbus.browse.scan."""
        text = self.text.lower().encode()
        key = self.key.encode() if self.key else None
        ce_type = self.ce_type.encode() if self.ce_type else None
        header = (self.header[0], self.header[1].encode()) if self.header else None
        path, wanted = self.field if self.field else ((), "")
        wanted_raw = wanted.encode()

        def header_value(headers, name):
            for n, v in headers:
                if n == name:
                    return v
            return None

        def match(k, v, headers) -> bool:
            if key is not None and k != key:
                return False
            if ce_type is not None and header_value(headers, "ce_type") != ce_type:
                return False
            if header is not None and header_value(headers, header[0]) != header[1]:
                return False
            if text and not (
                (v is not None and text in v.lower())
                or (k is not None and text in k.lower())
                or any(h is not None and text in h.lower() for _, h in headers)
            ):
                return False
            if path:
                if v is None or wanted_raw not in v:
                    return False
                return field_text(v, path) == wanted
            return True

        return match


def field_text(value: bytes, path: tuple[str, ...]) -> str | None:
    """The value at `path` in a JSON payload, as text (strings as they are, the rest as JSON)."""
    try:
        node = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    for step in path:
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return None
    return node if isinstance(node, str) else orjson.dumps(node).decode()


def parse(params) -> Filter:
    """`q`, `key`, `type`, `header=name:value`, `field=path.to.field=value` from a QueryDict (or a dict)."""
    get = params.get
    text = (get("q") or "").strip()
    if len(text) > 200:
        raise BadFilter("q: at most 200 characters; search for a shorter, distinctive piece of text")
    header = None
    if get("header"):
        name, sep, value = get("header").partition(":")
        if not sep or not name.strip():
            raise BadFilter("header: write it as name:value, e.g. ce_subject:3f1c… or ce_correlationid:…")
        header = (name.strip(), value.strip())
    field = None
    if get("field"):
        path, sep, value = get("field").partition("=")
        steps = tuple(s for s in path.strip().split("."))
        if not sep or not path.strip() or any(not s for s in steps):
            raise BadFilter("field: write it as path=value, e.g. lines.0.sku=MUG or total=12.00")
        field = (steps, value.strip())
    return Filter(
        text=text,
        key=(get("key") or "").strip(),
        ce_type=(get("type") or "").strip(),
        header=header,
        field=field,
    )
