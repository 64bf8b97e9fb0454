"""HTTP and security against a live daphne (issue 7, "Bad input" and "Security"): schemathesis finds no
5xx, orders are seen only with their token or by staff, CSRF on every form and staff action, the order rate
limit answers 429 with Retry-After, `check --deploy` is clean, and tokens never reach a log."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import urllib.request

import pytest
from django.test import Client

from shop.models import Product
from tests.support import PYTHON, ROOT, RedisServer, free_port

from .helpers import http, joined, seed, settled, sweep, wait_terminal

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]


def _order_body(sku="SEC-1", quantity=1) -> dict:
    return {
        "email": "sec@example.com",
        "name": "Sec",
        "address": "1 Safe St",
        "lines": [{"sku": sku, "quantity": quantity}],
    }


def test_schemathesis_finds_no_5xx_on_the_live_api(stack):
    seed({"SEC-1": 1000, "SEC-2": 0})
    port = free_port()
    stack.web(port)
    done = subprocess.run(
        [
            os.path.join(os.path.dirname(PYTHON), "schemathesis"),
            "run",
            f"http://127.0.0.1:{port}/api/openapi.json",
            "--checks",
            "not_a_server_error",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            os.environ.get("FAULTS_SCHEMATHESIS_EXAMPLES", "40"),
            "--seed",
            "7",
            "--request-timeout",
            "20",
            "--no-color",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = done.stdout[-3000:]
    print(f"\n{summary}")
    assert done.returncode == 0, summary + done.stderr[-2000:]
    assert " 500 " not in stack.log("web") and "Traceback" not in stack.log("web"), stack.log("web")[-3000:]


def test_orders_are_seen_only_with_their_token_or_by_staff_and_tokens_are_never_logged(stack, django_user_model):
    start = seed({"SEC-1": 100})
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    stack.web(port)
    for service in ("shop", "inventory", "shipping"):
        stack.consumer(service)
    stack.celery()
    joined(stack, "shop", "inventory", "shipping")
    placed = []
    for _ in range(3):
        status, _, body = http("POST", f"{web}/api/orders", _order_body())
        assert status == 201, body
        placed.append(json.loads(body))
    mine, other, cancelled = placed
    bearer = {"Authorization": f"Bearer {mine['token']}"}
    assert http("GET", f"{web}/api/orders/{mine['id']}", headers=bearer)[0] == 200
    # a private link: its token is swapped for a session, and the browser lands on the address without it
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with browser.open(f"{web}/orders/{mine['id']}/?token={mine['token']}", timeout=30) as page:
        assert page.status == 200 and "token" not in page.url
    status, _, body = http(
        "POST", f"{web}/api/orders/{cancelled['id']}/cancel", headers={"Authorization": f"Bearer {cancelled['token']}"}
    )
    assert status in (202, 409), body
    # IDOR: no token, a wrong one, another order's token, a token in the wrong place: all 404
    for headers, url in [
        ({}, f"/api/orders/{mine['id']}"),
        ({"Authorization": "Bearer " + secrets.token_urlsafe(24)}, f"/api/orders/{mine['id']}"),
        ({"Authorization": f"Bearer {other['token']}"}, f"/api/orders/{mine['id']}"),
        ({"Authorization": mine["token"]}, f"/api/orders/{mine['id']}"),
        ({}, f"/api/orders/{mine['id']}?token={mine['token']}"),
        ({}, f"/orders/{mine['id']}/"),
        ({}, f"/orders/{mine['id']}/?token={other['token']}"),
        ({"Authorization": f"Bearer {other['token']}"}, f"/api/orders/{mine['id']}/cancel"),
    ]:
        method = "POST" if url.endswith("/cancel") else "GET"
        status, _, body = http(method, web + url, headers=headers)
        assert status == 404, (method, url, headers, status, body[:200])
        assert mine["token"].encode() not in body and b"sec@example.com" not in body
    # staff read any order (in-process client on the same databases); non-staff users do not
    staff = django_user_model.objects.create_user("sec-staff", "s@example.com", "pw", is_staff=True)
    user = django_user_model.objects.create_user("sec-user", "u@example.com", "pw")
    staff_client, user_client = Client(), Client()
    staff_client.force_login(staff)
    user_client.force_login(user)
    assert staff_client.get(f"/api/orders/{mine['id']}").status_code == 200
    assert staff_client.get(f"/orders/{mine['id']}/").status_code == 200
    # sessions never write
    assert staff_client.post(f"/api/orders/{mine['id']}/cancel", content_type="application/json").status_code == 404
    assert user_client.get(f"/api/orders/{mine['id']}").status_code == 404
    assert user_client.get(f"/orders/{mine['id']}/").status_code == 404
    assert user_client.get("/dashboard/").status_code in (302, 403)
    assert Client().get("/admin/").status_code == 302
    assert Client().get("/dashboard/").status_code in (302, 403)
    assert user_client.post("/dashboard/api/dead-letters/replay").status_code in (302, 403)

    ids = [p["id"] for p in placed]
    wait_terminal(ids, 90, sweep=lambda: sweep(stack))
    assert not settled(ids, start).problems
    leaked = {
        name: [p["token"] for p in placed if p["token"] in stack.log(name)]
        for name in stack.argv
        if any(p["token"] in stack.log(name) for p in placed)
    }
    assert not leaked, f"tokens in the logs: {leaked}"
    assert sum(len(stack.log(n)) for n in stack.argv) > 1000, "the logs are empty; nothing was checked"


def test_csrf_is_enforced_on_every_form_and_staff_action(django_user_model):
    Product.objects.using("shop").create(sku="CSRF-1", name="C", price="1.00", available=5)
    from shop.services import place_order

    placed = place_order(email="c@example.com", name="C", address="1 St", lines=[{"sku": "CSRF-1", "quantity": 1}])
    browser = Client(enforce_csrf_checks=True)
    forms = [
        ("/products/CSRF-1/", {"quantity": "1"}),
        ("/cart/CSRF-1/", {"quantity": "1"}),
        ("/cart/CSRF-1/remove/", {}),
        ("/checkout/", {"email": "c@example.com", "name": "C", "address": "1 St"}),
        (f"/orders/{placed.order.id}/cancel/?token={placed.token}", {}),
        ("/admin/login/", {"username": "x", "password": "y"}),
    ]
    for url, data in forms:
        assert browser.post(url, data).status_code == 403, url
    staff = django_user_model.objects.create_user("csrf-staff", "s@example.com", "pw", is_staff=True, is_superuser=True)
    admin = Client(enforce_csrf_checks=True)
    admin.force_login(staff)
    for url in ("/dashboard/api/dead-letters/replay", "/dashboard/api/dead-letters/discard", "/admin/logout/"):
        assert admin.post(url, {}).status_code == 403, url
    # and with the token the same form works (the 403s above are CSRF, not something else)
    page = browser.get("/products/CSRF-1/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()
    assert browser.post("/products/CSRF-1/", {"quantity": "1", "csrfmiddlewaretoken": token}).status_code in (200, 302)


def test_the_order_rate_limit_answers_429_with_retry_after(stack, tmp_path):
    redis = RedisServer(tmp_path / "redis")  # a fresh counter, whatever else ran this hour
    redis.start()
    try:
        seed({"SEC-1": 100})
        stack.env.update(ORDER_RATE_LIMIT="3/h", REDIS_URL=redis.url)
        port = free_port()
        stack.web(port)
        answers = [http("POST", f"http://127.0.0.1:{port}/api/orders", _order_body()) for _ in range(5)]
        assert [a[0] for a in answers] == [201, 201, 201, 429, 429], [(a[0], a[2][:100]) for a in answers]
        retry_after = answers[3][1].get("Retry-After")
        assert retry_after and retry_after.isdigit() and 0 < int(retry_after) <= 3600, answers[3][1]
        assert json.loads(answers[3][2])["detail"]
    finally:
        redis.stop()


def test_check_deploy_is_clean_with_production_settings():
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CONVEYOR_TEST"))},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)[:50],
        "DJANGO_ALLOWED_HOSTS": "example.com",
    }
    done = subprocess.run(
        [PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # and production turns the order rate limit on by default
    done = subprocess.run(
        [
            PYTHON,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.ORDER_RATE_LIMIT)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "30/m", done.stdout + done.stderr
