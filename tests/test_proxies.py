"""The client address behind reverse proxies (TRUSTED_PROXIES): no proxy, trusted proxies by count and by
network, and X-Forwarded-For / X-Forwarded-Proto forged by a client. Unit tests of the resolution, then a
real `python -m config.serve` whose order rate limit and access log use the resolved client."""

from __future__ import annotations

import json

import pytest

from config.proxies import TrustedProxies, resolve_scope
from tests.secure_redis import SecureRedis
from tests.support import free_port, wait_for


def scope(peer="127.0.0.1", xff=None, proto=None, kind="http"):
    headers = [(b"host", b"shop.example.com")]
    if xff is not None:
        headers.append((b"x-forwarded-for", xff.encode()))
    if proto is not None:
        headers.append((b"x-forwarded-proto", proto.encode()))
    return {"type": kind, "client": [peer, 5000], "scheme": "http" if kind == "http" else "ws", "headers": headers}


def header_names(s):
    return {k for k, _ in s["headers"]}


def test_no_proxy_uses_the_peer_and_drops_forwarding_headers():
    resolved = resolve_scope(scope(peer="198.51.100.9", xff="9.9.9.9", proto="https"), TrustedProxies.parse(""))
    assert resolved["client"][0] == "198.51.100.9"
    assert resolved["scheme"] == "http"
    assert header_names(resolved) == {b"host"}  # nothing left for Django to believe


def test_one_trusted_proxy_by_count_takes_the_address_it_appended():
    # the client forged 9.9.9.9; the proxy appended the address it saw, 203.0.113.5
    resolved = resolve_scope(scope(xff="9.9.9.9, 203.0.113.5", proto="https"), TrustedProxies.parse("1"))
    assert resolved["client"][0] == "203.0.113.5" and resolved["scheme"] == "https"


def test_two_proxies_by_count():
    resolved = resolve_scope(scope(xff="9.9.9.9, 203.0.113.5, 10.0.0.2"), TrustedProxies.parse("2"))
    assert resolved["client"][0] == "203.0.113.5"


def test_trusted_networks_walk_from_the_right_past_every_proxy():
    proxies = TrustedProxies.parse("127.0.0.1/32,10.0.0.0/8")
    resolved = resolve_scope(scope(xff="9.9.9.9, 203.0.113.5, 10.0.0.7"), proxies)
    assert resolved["client"][0] == "203.0.113.5"


def test_an_untrusted_peer_cannot_forge_its_address_or_https():
    proxies = TrustedProxies.parse("10.0.0.0/8")
    resolved = resolve_scope(scope(peer="198.51.100.9", xff="10.0.0.1", proto="https"), proxies)
    assert resolved["client"][0] == "198.51.100.9" and resolved["scheme"] == "http"
    assert header_names(resolved) == {b"host"}


def test_garbage_in_the_header_stops_at_the_last_proxy():
    proxies = TrustedProxies.parse("127.0.0.1/32")
    assert resolve_scope(scope(xff="not-an-ip"), proxies)["client"][0] == "127.0.0.1"
    assert resolve_scope(scope(xff="1.1.1.1, <script>"), proxies)["client"][0] == "127.0.0.1"


def test_websocket_scheme_follows_the_proxy():
    resolved = resolve_scope(scope(xff="203.0.113.5", proto="https", kind="websocket"), TrustedProxies.parse("1"))
    assert resolved["client"][0] == "203.0.113.5" and resolved["scheme"] == "wss"


def test_a_malformed_setting_says_what_to_write():
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        TrustedProxies.parse("proxy.internal")


def test_secure_proxy_ssl_header_only_when_a_proxy_is_trusted():
    import os
    import subprocess
    import sys

    code = "import django; django.setup(); from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"
    for value, expected in (("", "None"), ("1", "('HTTP_X_FORWARDED_PROTO', 'https')")):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1", "TRUSTED_PROXIES": value}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert done.stdout.strip() == expected, done.stderr


# --------------------------------------------------------------------------- a real server


@pytest.mark.integration
@pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"])
@pytest.mark.parametrize("trusted", ["", "127.0.0.1/32"], ids=["no-proxy", "trusted-proxy"])
def test_the_rate_limit_and_the_access_log_use_the_resolved_client(stack, tmp_path, trusted):
    from tests.faults.helpers import http, seed

    redis = SecureRedis(tmp_path / "redis").start()  # a fresh rate-limit counter
    try:
        seed({"PRX-1": 100})
        port = free_port()
        stack.env.update(ORDER_RATE_LIMIT="2/h", REDIS_URL=redis.url, TRUSTED_PROXIES=trusted, LOG_LEVEL="INFO")
        stack.web(port)
        body = {
            "email": "p@example.com",
            "name": "P",
            "address": "1 Proxy Rd",
            "lines": [{"sku": "PRX-1", "quantity": 1}],
        }

        def place(xff):
            return http("POST", f"http://127.0.0.1:{port}/api/orders", body, {"X-Forwarded-For": xff})[0]

        # customer A through the proxy; twice, then a third with a forged leftmost address
        first = [place("203.0.113.5"), place("203.0.113.5"), place("6.6.6.6, 203.0.113.5")]
        other_customer = place("198.51.100.23")
        placed = json.loads(http("POST", f"http://127.0.0.1:{port}/api/orders", body)[2] or b"{}")
        if trusted:
            assert first == [201, 201, 429]  # forging the leftmost entry does not open a new bucket
            assert other_customer == 201  # another customer behind the same proxy has a bucket of its own
        else:
            # no proxy trusted: everything comes from the peer, whatever the header says
            assert first + [other_customer] == [201, 201, 429, 429]
        order_id, token = placed.get("id"), placed.get("token")
        if order_id:
            http(
                "GET",
                f"http://127.0.0.1:{port}/orders/{order_id}/?token={token}",
                None,
                {"X-Forwarded-For": "203.0.113.77"},
            )

        def logged():
            text = stack.log("web")
            return text if text.count("/api/orders") >= 5 else None

        log = wait_for(logged, 20, "the access log lines of the web")
        if trusted:
            assert "203.0.113.5 " in log and "198.51.100.23 " in log and "6.6.6.6" not in log
        else:
            assert "203.0.113.5" not in log and "127.0.0.1 " in log
        if token:
            assert token not in log and "token=[redacted]" in wait_for(
                lambda: "token=" in stack.log("web") and stack.log("web"), 20, "the order page's log line"
            )
    finally:
        redis.stop()
