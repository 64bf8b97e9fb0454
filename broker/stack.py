"""`make run`: set up and run the whole Conveyor stack in the foreground, printing each step's time.

Starts Kafka and Redis unless KAFKA_BOOTSTRAP_SERVERS / REDIS_URL are set (or already answering on
their default ports), migrates every database, seeds the demo catalogue if empty, then runs the
Procfile with honcho: web (daphne), every consumer, a Celery worker and beat. Ctrl-C stops it all.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broker import redis_server  # noqa: E402
from broker.launch import Cluster, LaunchError, metadata_brokers, port_is_free  # noqa: E402

STARTED = time.monotonic()
PYTHON = sys.executable
DATABASES = ("default", "shop", "inventory", "shipping", "dashboard")


def step(message: str) -> None:
    print(f"[run {time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def dev_env() -> dict[str, str]:
    """`make run`'s defaults; anything already set in the caller's environment wins."""
    env = dict(os.environ)
    for name, value in {
        "DJANGO_DEBUG": "1",
        "SHIPPING_STEP_SECONDS": "3",
        "PROMETHEUS_MULTIPROC_DIR": str(ROOT / "var" / "prometheus"),
        "PYTHONUNBUFFERED": "1",
    }.items():
        env.setdefault(name, value)
    env["PATH"] = f"{Path(PYTHON).parent}:{env.get('PATH', '')}"
    return env


def ensure_dotenv() -> None:
    dotenv = ROOT / ".env"
    if not dotenv.exists():
        dotenv.write_text(
            "# Written by `make run` for local development; the environment always wins over this file.\n"
            "DJANGO_DEBUG=1\n"
        )
        step("wrote .env (DJANGO_DEBUG=1) so that `python manage.py …` works in development")


def check_disk() -> None:
    free = shutil.disk_usage(ROOT).free
    if free < 1 << 30:
        raise LaunchError(
            f"only {free >> 20} MB free on this disk; Kafka and the databases need at least 1 GB. "
            "Free some space and retry."
        )


def manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise LaunchError(f"`python manage.py {' '.join(args)}` failed:\n{done.stdout}{done.stderr}")


def start_services(env: dict[str, str]) -> list:
    owned = []
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        step(f"using Kafka at {env['KAFKA_BOOTSTRAP_SERVERS']}")
    elif not port_is_free(9092) and _kafka_answers():
        step("using the Kafka already running on 127.0.0.1:9092")
    else:
        step("starting Kafka (KRaft) on 127.0.0.1:9092 ...")
        cluster = Cluster()
        cluster.start()
        took = cluster.wait_ready()
        owned.append(cluster)
        step(f"Kafka ready ({took:.1f}s); its log is var/log/kafka.log")
    if env.get("REDIS_URL"):
        step(f"using Redis at {env['REDIS_URL']}")
    elif redis_server.answers(6379):
        step("using the Redis already running on 127.0.0.1:6379")
    else:
        if not port_is_free(6379):
            raise LaunchError("port 6379 is taken by something that is not Redis; stop it or set REDIS_URL.")
        owned.append(redis_server.start(6379, ROOT / "var" / "redis"))
        step("Redis ready on 127.0.0.1:6379")
    return owned


def _kafka_answers() -> bool:
    try:
        return metadata_brokers("127.0.0.1", 9092) >= 1
    except OSError:
        return False


def announce_when_ready(port: int) -> None:
    while port_is_free(port):
        time.sleep(0.2)
    step(
        f"Conveyor is ready: http://127.0.0.1:{port}/  (staff login admin / admin; "
        f"dashboard http://127.0.0.1:{port}/dashboard/). Ctrl-C stops everything."
    )


def main() -> int:
    env = dev_env()
    owned: list = []
    try:
        check_disk()
        ensure_dotenv()
        owned = start_services(env)
        metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        for alias in DATABASES:
            manage(env, "migrate", "--database", alias, "--no-input", "-v", "0")
        step("databases migrated: " + ", ".join(DATABASES))
        manage(env, "seed_demo", "--if-empty")
        step("demo catalogue ready")
        port = int(env.get("PORT", "8000"))
        env["WEB_PORT"] = str(port)  # honcho sets PORT itself, so the Procfile reads WEB_PORT
        if not port_is_free(port):
            raise LaunchError(f"port {port} is already in use; stop that process or run `PORT=8001 make run`.")
        step("starting web, consumers, Celery worker and beat (honcho) ...")
        threading.Thread(target=announce_when_ready, args=(port,), daemon=True).start()
        honcho = subprocess.Popen([PYTHON, "-m", "honcho", "start", "-f", "Procfile"], cwd=ROOT, env=env)
        signal.signal(signal.SIGTERM, lambda *_: honcho.send_signal(signal.SIGTERM))
        try:
            code = honcho.wait()
        except KeyboardInterrupt:
            code = honcho.wait()
        # Ctrl-C or SIGTERM is how `make run` is meant to end: that is a clean stop, not a failure.
        return 0 if code in (130, 143, -2, -15) else code
    except LaunchError as exc:
        step(f"error: {exc}")
        return 2
    finally:
        for service in reversed(owned):
            if isinstance(service, Cluster):
                step("stopping Kafka ...")
                service.stop()
            else:
                service.terminate()
                service.wait(10)
        if owned:
            step("stopped")


if __name__ == "__main__":
    sys.exit(main())
