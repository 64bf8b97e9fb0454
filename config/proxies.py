"""The client's address and scheme behind reverse proxies, for everything after the server: Django's
REMOTE_ADDR (the order rate limit, /metrics access), websockets' scope["client"], and the access log.

TRUSTED_PROXIES says which hops in front of the web are proxies:
- empty (the default): none. The peer is the client; X-Forwarded-* headers are dropped unread.
- a count N: the N nearest hops are proxies whatever their address (the peer is the first). The client is
  the N-th address from the right of X-Forwarded-For: each proxy appends the address it saw, so anything
  further left was written by the client and is ignored.
- networks ("10.0.0.0/8,192.0.2.1"): the peer and the X-Forwarded-For entries from the right that lie in
  them are proxies; the first address from the right that does not is the client.
From a peer that is not a trusted proxy, X-Forwarded-* and Forwarded are removed from the request, so no
later code (Django's SECURE_PROXY_SSL_HEADER included) can be fooled by a client that writes them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .private import in_networks, parse_networks

FORWARDING_HEADERS = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port", b"forwarded", b"x-real-ip"}
)


@dataclass(frozen=True)
class TrustedProxies:
    count: int = 0
    networks: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> TrustedProxies:
        value = (value or "").strip()
        if not value:
            return cls()
        if value.isdigit():
            return cls(count=int(value))
        try:
            return cls(networks=parse_networks(value))
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES must be a number of proxies (e.g. 1) or networks: {exc}") from None

    def __bool__(self) -> bool:
        return bool(self.count or self.networks)

    def trusts_peer(self, peer: str | None) -> bool:
        return bool(self.count) or in_networks(peer, self.networks)

    def client(self, peer: str | None, forwarded_for: list[str]) -> str | None:
        """The client's address, given the peer and the X-Forwarded-For entries (left to right)."""
        if not self.trusts_peer(peer):
            return peer
        if self.count:
            hops = forwarded_for[-self.count :] if forwarded_for else []
            candidate = hops[0] if hops else peer  # fewer entries than proxies: the first proxy's view
            return candidate if _is_ip(candidate) else peer
        trusted_hop = peer
        for address in reversed(forwarded_for):
            if not _is_ip(address):
                return trusted_hop  # garbage: the last proxy that recorded it is as far as we can see
            if not in_networks(address, self.networks):
                return address
            trusted_hop = address
        return trusted_hop


def _is_ip(value: str | None) -> bool:
    try:
        ipaddress.ip_address((value or "").strip("[]"))
    except ValueError:
        return False
    return True


def _values(headers, name: bytes) -> list[str]:
    items = []
    for key, value in headers:
        if key.lower() == name:
            items += [part.strip() for part in value.decode("latin-1").split(",") if part.strip()]
    return items


def resolve_scope(scope: dict, proxies: TrustedProxies) -> dict:
    """A copy of an http/websocket scope with the client (and scheme) as the trusted proxies report them."""
    peer = (scope.get("client") or [None])[0]
    headers = list(scope.get("headers") or [])
    if not proxies.trusts_peer(peer):
        stripped = [(k, v) for k, v in headers if k.lower() not in FORWARDING_HEADERS]
        return {**scope, "headers": stripped} if len(stripped) != len(headers) else scope
    client = proxies.client(peer, _values(headers, b"x-forwarded-for"))
    resolved = {**scope, "client": [client, 0] if client else scope.get("client")}
    protos = _values(headers, b"x-forwarded-proto")
    if protos and protos[-1].lower() in ("http", "https"):
        secure = protos[-1].lower() == "https"
        if scope["type"] == "websocket":
            resolved["scheme"] = "wss" if secure else "ws"
        else:
            resolved["scheme"] = "https" if secure else "http"
    return resolved


class TrustedProxiesMiddleware:
    """ASGI middleware (outermost) applying `resolve_scope` to every http and websocket connection."""

    def __init__(self, app, proxies: TrustedProxies):
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            scope = resolve_scope(scope, self.proxies)
        return await self.app(scope, receive, send)
