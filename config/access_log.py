"""The web's access log, one line per HTTP request and per websocket handshake, written by the application
(logger `conveyor.access`, in LOG_FORMAT) rather than by the server: it sees the client address as
resolved through TRUSTED_PROXIES, and it never writes a secret from a query string (`?token=…`).
`python -m config.serve` turns daphne's own access log off in its favour."""

from __future__ import annotations

import logging
import re
import time

log = logging.getLogger("conveyor.access")
SECRET_PARAMS = re.compile(r"((?:^|[?&])(?:token|access_token)=)[^&\s\"]*", re.IGNORECASE)


def redact(query: str) -> str:
    return SECRET_PARAMS.sub(r"\1[redacted]", query)


def _target(scope) -> str:
    query = (scope.get("query_string") or b"").decode("latin-1")
    return scope.get("path", "") + ("?" + redact(query) if query else "")


class AccessLogMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        state = {"status": None, "bytes": 0, "logged": False}

        def write(status):
            if state["logged"] or not log.isEnabledFor(logging.INFO):
                return
            state["logged"] = True
            client = (scope.get("client") or ["-"])[0]
            method = scope.get("method", "WEBSOCKET")
            ms = round((time.perf_counter() - started) * 1000, 1)
            log.info(
                '%s "%s %s" %s %s %sms',
                client,
                method,
                _target(scope),
                status,
                state["bytes"],
                ms,
                extra={"client": client, "method": method, "status": status, "bytes": state["bytes"], "ms": ms},
            )

        async def logging_send(message):
            kind = message["type"]
            if kind == "http.response.start":
                state["status"] = message["status"]
            elif kind == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
                if not message.get("more_body"):
                    write(state["status"])
            elif kind == "websocket.accept":
                write(101)
            elif kind == "websocket.close" and not state["logged"]:
                write(403)
            await send(message)

        try:
            return await self.app(scope, receive, logging_send)
        finally:
            if scope["type"] == "http" and not state["logged"]:
                write(state["status"] or 500)
