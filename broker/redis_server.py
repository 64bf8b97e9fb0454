"""Debian's redis-server on 127.0.0.1:6379 for `make run` (unless REDIS_URL is set)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from broker.launch import LaunchError, _die_with_parent


def answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start(port: int, workdir: Path) -> subprocess.Popen:
    binary = shutil.which("redis-server")
    if not binary:
        raise LaunchError("redis-server is not installed. Install it (Debian: apt-get install redis-server) and retry.")
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "60 1000"],
        stdout=open(workdir / "redis.log", "ab"),  # noqa: SIM115 (the child keeps it)
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    deadline = time.monotonic() + 20
    while not answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise LaunchError(f"redis-server did not start on port {port}; see {workdir / 'redis.log'}")
        time.sleep(0.05)
    return process
