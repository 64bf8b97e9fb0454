"""SQLite, with writers queueing for the write lock instead of sleeping on it.

SQLite lets one writer in at a time. A `BEGIN IMMEDIATE` that finds the file locked waits in SQLite's busy
handler, which sleeps in growing steps of up to 100 ms between tries: under daphne, where every request
runs in a thread of its own, sixteen concurrent `POST /api/orders` turned 5 ms of work into p95 latencies
of 0.5 s, and a consumer's relay thread slept behind its own consumer's batch.

So a transaction first takes a lock per database file: a `threading.Lock` among the threads of a process,
then an advisory `flock` on `<database>-writelock` among processes (tried every 0.5-4 ms, since `flock`
has no timeout). Both are dropped at `COMMIT`/`ROLLBACK`/close, so the next writer goes in at once. The
database stays the authority: a writer that bypasses the queue (autocommit statements, another program)
still meets SQLite's own lock and busy handler. Where connections are not kept (the web, `DB_CONN_MAX_AGE=0`),
closed connections wait in a bounded pool per file (`OPTIONS["pool"]`) instead of being opened again, with
their PRAGMAs, for every request.

Why not Django's own backend with `transaction_mode="IMMEDIATE"` and `timeout`: measured against it
(`bench/web_ab.py`: 16 concurrent `POST /api/orders` while a second process writes to the same file in
short transactions, the variants alternating), the POST's p99 was 268 ms against 1 254 (four rounds,
ranges apart) and the other writer got 295 transactions through against 200; on a loaded machine
745 against 1 152 ms and 238 against 165 (six rounds). Neither ever failed with "database is locked"
(the stock busy timeout is 20 s). docs/performance.md has the tables.

Relies on Django 5.2.19's sqlite3 backend internals, none of them public API: `get_connection_params`,
`get_new_connection`, `init_commands`, `_start_transaction_under_autocommit`, `_commit`, `_rollback` and
`_close` of `django.db.backends.sqlite3.base.DatabaseWrapper`. Django is pinned in requirements.lock and
pyproject.toml; tests/test_runtime_pins.py fails when another version is installed.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time

from django.db import OperationalError
from django.db.backends.sqlite3 import base

WRITTEN_AGAINST = {"django": "5.2.19"}


class _WriteLock:
    """One per database file and process; held by one connection at a time."""

    def __init__(self, name: str):
        self.thread_lock = threading.Lock()
        self.fd = os.open(f"{name}-writelock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self.thread_lock.acquire(timeout=timeout):
            return False
        pause = 0.0005
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self.thread_lock.release()
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 0.004)

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.thread_lock.release()


class _Pool:
    """Idle connections to one database file, with the (device, inode) of the file they were opened on."""

    def __init__(self, size: int):
        self.size = size
        self.idle: list[tuple[sqlite3.Connection, tuple[int, int]]] = []
        self.lock = threading.Lock()

    def take(self, name: str) -> tuple[sqlite3.Connection, tuple[int, int]] | None:
        while True:
            with self.lock:
                if not self.idle:
                    return None
                conn, opened_on = self.idle.pop()
            if _file_id(name) == opened_on:
                return conn, opened_on
            conn.close()  # the file was deleted or replaced since

    def give(self, conn: sqlite3.Connection, opened_on: tuple[int, int]) -> bool:
        with self.lock:
            if len(self.idle) >= self.size:
                return False
            self.idle.append((conn, opened_on))
            return True


def _file_id(name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(name)
    except OSError:
        return None
    return st.st_dev, st.st_ino


_locks: dict[str, _WriteLock] = {}
_locks_guard = threading.Lock()
_pools: dict[tuple, _Pool] = {}
_left_at_fork: list = []


def _forget_after_fork() -> None:
    # A forked child (a Celery prefork worker) shares its parent's lock files' open descriptions, under
    # which flock cannot tell the two apart: it opens its own. Its parent's pooled connections are kept
    # referenced but never used: SQLite connections must not cross a fork.
    global _locks_guard
    _locks.clear()
    _locks_guard = threading.Lock()
    _left_at_fork.append(dict(_pools))
    _pools.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def _write_lock(name: str) -> _WriteLock:
    with _locks_guard:
        if name not in _locks:
            _locks[name] = _WriteLock(name)
        return _locks[name]


def _pool(key: tuple, size: int) -> _Pool:
    with _locks_guard:
        if key not in _pools:
            _pools[key] = _Pool(size)
        return _pools[key]


class DatabaseWrapper(base.DatabaseWrapper):
    _held: _WriteLock | None = None
    _pooled: _Pool | None = None
    _opened_on: tuple[int, int] | None = None

    def get_connection_params(self):
        params = dict(super().get_connection_params())
        size = int(params.pop("pool", 0) or 0)
        self._pooled = None
        if size > 0 and not self.is_in_memory_db():
            key = (tuple(sorted(params.items())), tuple(self.init_commands))
            self._pooled = _pool(key, size)
        return params

    def get_new_connection(self, conn_params):
        name = str(conn_params["database"])
        if self._pooled is not None:
            taken = self._pooled.take(name)
            if taken is not None:
                conn, self._opened_on = taken
                return conn
        conn = super().get_new_connection(conn_params)
        self._opened_on = _file_id(name)
        return conn

    def _start_transaction_under_autocommit(self):
        if self.is_in_memory_db():
            return super()._start_transaction_under_autocommit()
        lock = _write_lock(str(self.settings_dict["NAME"]))
        timeout = float(self.settings_dict["OPTIONS"].get("timeout", 5))
        if not lock.acquire(timeout=timeout):
            raise OperationalError(
                f"database is locked: another writer held {self.alias!r} for {timeout:.0f}s "
                "(a long transaction? raise SQLITE_BUSY_TIMEOUT or look for a stuck process)"
            )
        self._held = lock
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.release()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release()

    def _close(self):
        try:
            conn = self.connection
            if (
                self._pooled is not None
                and conn is not None
                and self._opened_on is not None
                and not self.in_atomic_block  # Django keeps such a connection object around
                and not conn.in_transaction
                and not self.errors_occurred
                and self._pooled.give(conn, self._opened_on)
            ):
                return None
            return super()._close()
        finally:
            self._release()
