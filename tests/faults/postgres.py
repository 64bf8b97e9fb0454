"""A throwaway PostgreSQL for tests: Debian's server binaries, a cluster in a temp dir, a unix socket and
TCP on a free loopback port, one database per bounded app. As root, the cluster is owned and run by the
`postgres` user that Debian's package creates (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from tests.support import PYTHON, ROOT, free_port

ALIASES = ("default", "shop", "inventory", "shipping", "dashboard")
URL_VARS = {
    "default": "DATABASE_URL",
    "shop": "SHOP_DATABASE_URL",
    "inventory": "INVENTORY_DATABASE_URL",
    "shipping": "SHIPPING_DATABASE_URL",
    "dashboard": "DASHBOARD_DATABASE_URL",
}
USER = "conveyor"


def bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: `apt-get install postgresql` (bash .ci/run does it)")
    return Path(found[-1]).parent


class PostgresServer:
    def __init__(self, port: int | None = None):
        self.bin = bindir()
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="conveyor-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.logfile = self.root / "postgres.log"
        self.as_root = os.geteuid() == 0

    # -- running the server's tools as its owner

    def _argv(self, tool: str, *args: str) -> list[str]:
        argv = [str(self.bin / tool), *args]
        return ["runuser", "-u", "postgres", "--", *argv] if self.as_root else argv

    def _run(self, tool: str, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(self._argv(tool, *args), capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{done.stdout}{done.stderr}\n{self.log_tail()}")
        return done.stdout

    def init(self) -> PostgresServer:
        self.socket_dir.mkdir(parents=True)
        if self.as_root:
            owner = pwd.getpwnam("postgres")
            for path in (self.root, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync", "-N")
        return self

    def start(self) -> PostgresServer:
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.socket_dir}",
                "-c listen_addresses=127.0.0.1",
                "-c max_connections=300",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c shared_buffers=64MB",
            ]
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", options, "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects every client and shuts down; `immediate` is a crash (no checkpoint)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- databases

    def url(self, name: str) -> str:
        return f"postgres://{USER}:{USER}@127.0.0.1:{self.port}/{name}"

    def sql(self, *statements: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, dbname=database, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def create_databases(self, prefix: str, template: str | None = None) -> dict[str, str]:
        """One database per alias (`<prefix>_<alias>`), optionally copied from `<template>_<alias>`;
        returns {alias: url}."""
        self.sql(
            *(
                f'CREATE DATABASE "{prefix}_{alias}"' + (f' TEMPLATE "{template}_{alias}"' if template else "")
                for alias in ALIASES
            )
        )
        return {alias: self.url(f"{prefix}_{alias}") for alias in ALIASES}

    def migrate(self, urls: dict[str, str]) -> None:
        """Apply every app's migrations to its own database, in one real process."""
        script = "from django.core.management import call_command\nfor alias in {aliases!r}:\n" + (
            "    call_command('migrate', database=alias, verbosity=0, interactive=False)\n"
        )
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1"}
        env.pop("CONVEYOR_TEST_DB_DIR", None)
        env.update(env_for(urls))
        done = subprocess.run(
            [PYTHON, "manage.py", "shell", "-c", script.format(aliases=list(urls))],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{done.stdout}{done.stderr}")


def env_for(urls: dict[str, str]) -> dict[str, str]:
    return {URL_VARS[alias]: url for alias, url in urls.items()}


@contextmanager
def django_databases(urls: dict[str, str]):
    """Point this process's Django connections for the given aliases at other databases for a while
    (then back), so the test itself reads and writes where its subprocesses do."""
    import dj_database_url
    from django.db import connections

    saved = {}
    for alias, url in urls.items():
        saved[alias] = connections.settings[alias]
        _drop_connection(connections, alias)
        conf = dj_database_url.parse(url, conn_max_age=0)
        conf["TEST"] = {"NAME": conf["NAME"]}
        connections.settings[alias] = connections.configure_settings({"default": conf})["default"]
    try:
        yield
    finally:
        for alias, conf in saved.items():
            _drop_connection(connections, alias)
            connections.settings[alias] = conf


def _drop_connection(connections, alias: str) -> None:
    conn = getattr(connections._connections, alias, None)
    if conn is not None:
        try:
            conn.close()
        except Exception:
            pass
        delattr(connections._connections, alias)
