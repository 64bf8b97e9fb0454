"""Who may see the operator's endpoints (/metrics and the detail of /readyz): a client on one of
CONVEYOR_PRIVATE_NETWORKS, or one that sends `Authorization: Bearer <CONVEYOR_METRICS_TOKEN>`.

The client address is REMOTE_ADDR, which config/proxies.py has already resolved through TRUSTED_PROXIES:
behind a proxy on the same host, every request would otherwise come from loopback.
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in spec)


def parse_networks(value: str) -> tuple[str, ...]:
    """'127.0.0.0/8, ::1' -> ('127.0.0.0/8', '::1'); a malformed entry is a configuration error."""
    entries = tuple(n.strip() for n in (value or "").split(",") if n.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"{entry!r} is not a network: write addresses or CIDR blocks separated by commas, e.g. "
                "'127.0.0.0/8,10.0.0.0/8,::1'"
            ) from None
    return entries


def in_networks(address: str | None, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").strip("[]"))
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in net for net in _networks(networks))


def bearer_matches(request, expected: str) -> bool:
    if not expected:
        return False
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


def is_private(request) -> bool:
    """The request comes from an allowed network or carries the metrics token."""
    return in_networks(request.META.get("REMOTE_ADDR"), tuple(settings.CONVEYOR_PRIVATE_NETWORKS)) or bearer_matches(
        request, settings.CONVEYOR_METRICS_TOKEN
    )
