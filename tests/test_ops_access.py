"""/readyz checks Redis through redis-py with the app's own URL (password, TLS), and only private clients
see its detail or /metrics."""

import pytest

from tests.secure_redis import SecureRedis

pytestmark = pytest.mark.django_db(databases=["default", "shop", "inventory", "shipping", "dashboard"])

PUBLIC = {"REMOTE_ADDR": "203.0.113.7"}


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory):
    server = SecureRedis(tmp_path_factory.mktemp("redis-pw"), password="s3cret-pw").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    server = SecureRedis(tmp_path_factory.mktemp("redis-tls"), password="tls-pw", tls=True).start()
    yield server
    server.stop()


def _redis_check(client):
    response = client.get("/readyz")
    return response.status_code, response.json()["checks"]["redis"]


def test_redis_with_a_password_is_ready(client, settings, kafka_bootstrap, password_redis):
    settings.REDIS_URL = password_redis.url
    status, check = _redis_check(client)
    assert check["ok"], check
    assert status == 200


def test_redis_without_the_password_is_down_not_noauth_healthy(client, settings, kafka_bootstrap, password_redis):
    settings.REDIS_URL = f"redis://127.0.0.1:{password_redis.port}/0"
    status, check = _redis_check(client)
    assert status == 503 and check["ok"] is False
    assert "Authentication" in check["error"] or "NOAUTH" in check["error"], check


def test_redis_with_a_wrong_password_is_down(client, settings, kafka_bootstrap, password_redis):
    settings.REDIS_URL = f"redis://:wrong@127.0.0.1:{password_redis.port}/0"
    status, check = _redis_check(client)
    assert status == 503 and check["ok"] is False


def test_redis_over_tls_with_a_password_is_ready(client, settings, kafka_bootstrap, tls_redis):
    settings.REDIS_URL = tls_redis.url
    status, check = _redis_check(client)
    assert check["ok"], check
    assert status == 200


def test_plain_redis_against_a_tls_port_is_down(client, settings, kafka_bootstrap, tls_redis):
    settings.REDIS_URL = f"redis://:tls-pw@127.0.0.1:{tls_redis.port}/0"
    status, check = _redis_check(client)
    assert status == 503 and check["ok"] is False


def test_the_public_sees_only_the_status_of_readyz(client, kafka_bootstrap, redis_url):
    response = client.get("/readyz", **PUBLIC)
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_the_public_sees_503_without_detail(client, settings, kafka_bootstrap):
    from tests.support import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/readyz", **PUBLIC)
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}


def test_metrics_refuse_the_public_with_what_to_do(client):
    response = client.get("/metrics", **PUBLIC)
    assert response.status_code == 403
    assert "CONVEYOR_METRICS_TOKEN" in response.json()["detail"]
    assert b"conveyor_outbox_pending" not in response.content


def test_metrics_and_detail_with_the_token_from_anywhere(client, settings, kafka_bootstrap, redis_url):
    settings.CONVEYOR_METRICS_TOKEN = "scrape-me"
    auth = {"HTTP_AUTHORIZATION": "Bearer scrape-me"}
    assert b"conveyor_outbox_pending" in client.get("/metrics", **PUBLIC, **auth).content
    assert "checks" in client.get("/readyz", **PUBLIC, **auth).json()
    assert client.get("/metrics", **PUBLIC, HTTP_AUTHORIZATION="Bearer scrape-you").status_code == 403


def test_no_token_configured_means_a_bearer_never_opens(client, settings):
    settings.CONVEYOR_METRICS_TOKEN = ""
    assert client.get("/metrics", **PUBLIC, HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_a_private_network_scrapes_without_a_token(client, settings):
    settings.CONVEYOR_PRIVATE_NETWORKS = ("10.0.0.0/8",)
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403  # loopback no longer listed


def test_healthz_stays_public(client):
    assert client.get("/healthz", **PUBLIC).status_code == 200


def test_malformed_networks_are_a_clear_configuration_error():
    from config.private import parse_networks

    with pytest.raises(ValueError, match="CIDR"):
        parse_networks("10.0.0.0/8,not-a-net")
