"""docs/deploy.md followed line by line on this machine: its settings (with local servers in place of the
cluster: a TLS Redis with a password, a throwaway PostgreSQL, the test broker), DEBUG off, a fresh secret key
made by the doc's own command, its release steps, `manage.py check --deploy` clean, and the web started
through the documented entry point answering /healthz and /readyz as a load balancer and an operator would
ask them."""

from __future__ import annotations

import http.client
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.secure_redis import SecureRedis
from tests.support import PYTHON, ROOT, free_port, http_json, wait_for

from .postgres import PostgresServer, env_for

pytestmark = pytest.mark.integration
DOC = (ROOT / "docs" / "deploy.md").read_text()

# What this machine puts in place of the doc's example values, and why. Every other exported value is used
# exactly as the doc writes it.
LOCAL = {
    "DJANGO_ALLOWED_HOSTS": None,  # as written: requests below send Host: shop.example.com
    "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",  # the test broker has no SASL listener
    "KAFKA_SASL_MECHANISM": "",
    "KAFKA_SASL_USERNAME": "",
    "KAFKA_SASL_PASSWORD": "",
    "KAFKA_SSL_CAFILE": "",
    "TRUSTED_PROXIES": "127.0.0.1",  # this test is the proxy in front of the web
}


def _section(title: str) -> str:
    return DOC.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def _exports() -> dict[str, str]:
    """NAME -> value of every `export` in the Settings block, shell-evaluated like a reader's shell would."""
    block = _code_blocks(_section("Settings"))[0]
    names = re.findall(r"^export (\w+)=", block, re.M)
    script = block + "\n" + "".join(f'printf "%s\\0" "${name}"\n' for name in names)
    env = {**os.environ, "PATH": f"{Path(PYTHON).parent}:{os.environ['PATH']}"}  # the doc's `python`
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, env=env).stdout
    return dict(zip(names, out.split("\0")[:-1], strict=True))


@pytest.fixture
def servers(tmp_path, kafka_bootstrap):
    redis = SecureRedis(tmp_path / "redis", password="deploy-secret", tls=True).start()
    pg = PostgresServer().init().start()
    try:
        urls = pg.create_databases("deploy")
        yield {"redis": redis, "pg_urls": urls, "kafka": kafka_bootstrap}
    finally:
        redis.stop()
        pg.destroy()


def test_docs_deploy_md_brings_up_a_ready_web(servers, tmp_path):
    exported = _exports()
    assert exported["DJANGO_DEBUG"] == "0" and len(exported["DJANGO_SECRET_KEY"]) >= 50
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "KAFKA_", "CONVEYOR_"))}
    env.pop("REDIS_URL", None)
    env.update(exported)
    env.update({k: v for k, v in LOCAL.items() if v is not None})
    env.update(env_for(servers["pg_urls"]))
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=servers["kafka"],
        REDIS_URL=servers["redis"].url,  # rediss:// with a password and the CA, as the doc's URL
        DATABASE_URL=servers["pg_urls"]["default"],
        KAFKA_TOPIC_PREFIX=f"deploy{free_port()}.",
        PATH=f"{Path(PYTHON).parent}:{env['PATH']}",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    assert env["REDIS_URL"].startswith("rediss://:deploy-secret@")
    assert all(env[name] for name in exported if name not in LOCAL), "every doc setting has a value"

    # Once per release, as the doc writes it
    for block in _code_blocks(_section("Once per release"))[:1]:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=ROOT, env=env, capture_output=True)
        assert done.returncode == 0, done.stdout.decode()[-3000:] + done.stderr.decode()[-3000:]

    check = subprocess.run(
        [PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and "no issues" in check.stdout, check.stdout + check.stderr

    # The web through the one documented entry point (the doc's port and bind replaced by a free local one)
    row = next(line for line in _section("Processes").splitlines() if line.startswith("| web |"))
    argv = shlex.split(re.search(r"`([^`]+)`", row)[1])
    assert argv[:3] == ["python", "-m", "config.serve"], argv
    port = free_port()
    argv = [PYTHON, *argv[1:]]
    argv[argv.index("-b") + 1], argv[argv.index("-p") + 1] = "127.0.0.1", str(port)
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 (the child keeps it)
    web = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        host = {"Host": exported["DJANGO_ALLOWED_HOSTS"].split(",")[0]}

        def answers():
            assert web.poll() is None, (tmp_path / "web.log").read_text()[-3000:]
            try:
                return http_json("GET", f"{base}/healthz", headers=host, timeout=5)[0] == 200
            except OSError:
                return False

        wait_for(answers, 60, "the web to answer /healthz over plain HTTP (a load balancer's probe)")
        public = {**host, "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
        status, body = http_json("GET", f"{base}/readyz", headers=public)
        assert status == 200 and body == {"status": "ready"}, body  # the public sees only the verdict
        # the operator, from a private network behind the trusted proxy, sees every check
        operator = {**host, "X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https"}
        status, body = http_json("GET", f"{base}/readyz", headers=operator)
        assert status == 200, body
        checks = body["checks"]
        assert checks["redis"]["ok"] and checks["kafka"]["ok"], checks
        assert all(checks[f"database:{a}"]["ok"] for a in ("default", "shop", "inventory", "shipping", "dashboard"))
        # the storefront itself is HTTPS-only: plain HTTP is redirected
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/", headers=host)
        response = conn.getresponse()
        assert response.status == 301 and response.getheader("Location", "").startswith("https://"), response.status
        conn.close()
    finally:
        web.terminate()
        web.wait(20)
