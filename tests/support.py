"""Test support: real Redis and Kafka for the session, real subprocesses for the stack, and waiting on
conditions (never sleeping and hoping)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def wait_for(
    condition: Callable[[], object], timeout: float = 30.0, message: str = "condition", interval: float = 0.05
):
    """Poll `condition` until it returns something truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as exc:  # a condition may race with the system under test; keep polling
            last_error = exc
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {message}"
        + (f" (last error: {last_error!r})" if last_error else "")
    )


def _listening_ports() -> range:
    """Where to pick a port to listen on: below the kernel's ephemeral range, which it hands to outgoing
    connections. A port the kernel picks for a listener (bind to 0) is in that range, and between the pick
    and the server's own bind a client's connection can take it (daphne: "Address already in use")."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(10_000, low) if low > 11_000 else range(low, 65_000)


_port_draws = random.Random()  # its own generator: a test that seeds `random` must not repeat the ports


def free_port_run(count: int) -> int:
    """A port p such that p .. p+count-1 are all free."""
    ports = _listening_ports()
    for _ in range(500):
        port = _port_draws.randrange(ports.start, ports.stop - count)
        if all(_free(p) for p in range(port, port + count)):
            return port
    raise RuntimeError(f"no run of {count} free ports found in {ports.start}-{ports.stop - 1}")


def free_port_pair() -> int:
    """A port p such that p and p+1 are both free (Kafka uses p for clients, p+1 for its controller)."""
    return free_port_run(2)


def free_port() -> int:
    return free_port_run(1)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class RedisServer:
    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError(
                "redis-server is not installed: run `apt-get install redis-server` (bash .ci/run does it)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=open(self.workdir / "redis.log", "ab"),  # noqa: SIM115 (the child keeps it)
            stderr=subprocess.STDOUT,
        )
        wait_for(self.ping, 20, f"redis-server on port {self.port} (log: {self.workdir / 'redis.log'})")

    def ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class Stack:
    """Real processes of the system under test (consumers, Celery, daphne), with their logs kept."""

    def __init__(self, env: dict[str, str], logdir: Path):
        self.env = env
        self.logdir = logdir
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, subprocess.Popen] = {}
        self.argv: dict[str, list[str]] = {}

    def start(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        env = {**self.env, **(extra_env or {})}
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 (the child keeps it)
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = process
        self.argv[name] = argv
        return process

    def consumer(self, service: str, name: str | None = None, **extra_env) -> subprocess.Popen:
        return self.start(name or service, [PYTHON, "manage.py", "run_consumer", service], extra_env)

    def celery(self, name: str = "celery") -> subprocess.Popen:
        return self.start(
            name,
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-l",
                "warning",
                "-c",
                "2",
                "--without-gossip",
                "--without-mingle",
                "-P",
                "threads",
            ],
        )

    def web(self, port: int, name: str = "web") -> subprocess.Popen:
        process = self.start(
            name, [PYTHON, "-m", "config.serve", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
        )
        wait_for(lambda: not _free(port), 30, f"daphne on port {port}")
        return process

    def signal(self, name: str, sig: int) -> None:
        self.processes[name].send_signal(sig)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop(self, name: str, timeout: float = 30) -> int:
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return process.returncode

    def stop_all(self) -> None:
        """SIGTERM everything at once, then wait: stopping one by one costs seconds per process."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name in list(self.processes):
            self.stop(name)

    def log(self, name: str) -> str:
        path = self.logdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def http_json(method: str, url: str, body: object = None, headers: dict | None = None, timeout: float = 30):
    """(status, parsed JSON body) of one HTTP call, with the standard library only."""
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    if not url.startswith("http://"):
        raise ValueError(f"tests call their own servers over http, not {url!r}")
    request = urllib.request.Request(  # noqa: S310 (checked just above)
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (a test's own server)
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")
