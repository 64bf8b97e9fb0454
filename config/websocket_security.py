"""What every websocket passes before a consumer sees it: a same-origin check on scheme, host and port,
and, on the public sockets, a bound on how many one client may hold open in this process."""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _origin_tuple(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def same_origin(scope) -> bool:
    """The Origin names this very site: same scheme (wss ↔ https), host and port as the request, and a host
    in ALLOWED_HOSTS; or it is one of CSRF_TRUSTED_ORIGINS exactly."""
    origin = _header(scope, b"origin")
    if not origin:
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    found = _origin_tuple(origin)
    if found is None:
        return False
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    host_header = _header(scope, b"host")
    if host_header:
        domain, port = split_domain_port(host_header)
        if not domain:
            return False
        expected = (scheme, domain.strip("[]").lower(), int(port) if port else DEFAULT_PORTS[scheme])
    else:  # no Host header (not a browser): the origin must name an allowed host on the scheme's port
        expected = (scheme, found[1], DEFAULT_PORTS[scheme])
    return found == expected and validate_host(found[1], settings.ALLOWED_HOSTS)


class SameOriginValidator:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not same_origin(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.app(scope, receive, send)


class ConnectionLimit:
    """At most `settings.WS_CONNECTIONS_PER_CLIENT` open sockets per client address on the given paths,
    in this process; one more is refused (HTTP 403 at the handshake). The address is the one resolved
    through TRUSTED_PROXIES (config/proxies.py)."""

    def __init__(self, app, prefixes: tuple[str, ...]):
        self.app = app
        self.prefixes = prefixes
        self.open: Counter[str] = Counter()

    async def __call__(self, scope, receive, send):
        limit = settings.WS_CONNECTIONS_PER_CLIENT
        if scope["type"] != "websocket" or not limit or not scope.get("path", "").startswith(self.prefixes):
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ["unknown"])[0]
        if self.open[client] >= limit:
            return await WebsocketDenier()(scope, receive, send)
        self.open[client] += 1
        try:
            return await self.app(scope, receive, send)
        finally:
            self.open[client] -= 1
            if self.open[client] <= 0:
                del self.open[client]
