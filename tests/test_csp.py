"""Every HTML page carries a Content-Security-Policy without 'unsafe-inline' for scripts or styles."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db(databases=["default", "shop"])


@pytest.mark.parametrize("path", ["/", "/cart/", "/admin/login/"])
def test_html_pages_carry_a_strict_policy(path):
    response = Client().get(path)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'", policy
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'", policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_json_answers_carry_no_html_policy():
    response = Client().get("/healthz")
    assert "Content-Security-Policy" not in response
