"""runtime/sqlite: writers queue for a database file's write lock, across threads and across processes,
and a writer that waits too long gets SQLite's own "database is locked" error."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import textwrap
import threading

import pytest
from django.db import OperationalError
from django.db.utils import ConnectionHandler

from .support import ROOT, wait_for


def _connection(path, timeout: float = 20.0):
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "runtime.sqlite",
                "NAME": str(path),
                "OPTIONS": {"timeout": timeout, "transaction_mode": "IMMEDIATE"},
            }
        }
    )
    return handler["default"]


def _begin(conn) -> None:
    conn.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)


def _commit(conn) -> None:
    conn.commit()
    conn.set_autocommit(True)


@pytest.fixture
def db_file(tmp_path, django_db_blocker):
    django_db_blocker.unblock()  # a scratch database of the test's own, not the test databases
    yield _scratch(tmp_path)
    django_db_blocker.restore()


def _scratch(tmp_path):
    conn = _connection(tmp_path / "q.sqlite3")
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE log (who TEXT)")
    conn.close()
    return tmp_path / "q.sqlite3"


def _queue_is_held(db_file) -> bool:
    """Whether some writer holds the file's queue lock (what makes the next one wait, not SQLite's sleeps)."""
    with open(f"{db_file}-writelock", "a+b") as probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(probe, fcntl.LOCK_UN)
        return False


def _write_in_thread(path, who: str, entered: threading.Event, errors: list, timeout: float = 20.0):
    def run():
        conn = _connection(path, timeout)
        try:
            _begin(conn)
            entered.set()
            with conn.cursor() as cursor:
                cursor.execute("INSERT INTO log VALUES (%s)", [who])
            _commit(conn)
        except Exception as exc:
            errors.append(exc)
        finally:
            conn.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_second_thread_writes_right_after_the_first_commits(db_file):
    first = _connection(db_file)
    _begin(first)
    with first.cursor() as cursor:
        cursor.execute("INSERT INTO log VALUES ('first')")
    assert _queue_is_held(db_file)
    entered, errors = threading.Event(), []
    second = _write_in_thread(db_file, "second", entered, errors)
    assert not entered.wait(0.3), "the second writer began while the first held the write lock"
    _commit(first)
    second.join(10)
    assert entered.is_set() and not errors
    with first.cursor() as cursor:
        cursor.execute("SELECT who FROM log ORDER BY rowid")
        assert [row[0] for row in cursor.fetchall()] == ["first", "second"]
    first.close()


def test_a_writer_that_waits_too_long_gets_database_is_locked(db_file):
    first = _connection(db_file)
    _begin(first)
    entered, errors = threading.Event(), []
    _write_in_thread(db_file, "late", entered, errors, timeout=0.2).join(10)
    _commit(first)
    first.close()
    assert not entered.is_set()
    assert len(errors) == 1 and isinstance(errors[0], OperationalError)
    assert "database is locked" in str(errors[0]) and "SQLITE_BUSY_TIMEOUT" in str(errors[0])


def test_writers_in_two_processes_queue_on_the_lock_file(db_file):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from tests.test_sqlite_write_queue import _begin, _commit, _connection
                conn = _connection({str(db_file)!r})
                _begin(conn)
                print("held", flush=True)
                sys.stdin.readline()
                _commit(conn)
                print("released", flush=True)
                """
            ),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert _queue_is_held(db_file)
        entered, errors = threading.Event(), []
        _write_in_thread(db_file, "impatient", entered, errors, timeout=0.2).join(10)
        assert len(errors) == 1 and "database is locked" in str(errors[0])
        entered, errors = threading.Event(), []
        waiting = _write_in_thread(db_file, "patient", entered, errors)
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        waiting.join(10)
        wait_for(entered.is_set, 10, "the waiting writer to get in once the other process committed")
        assert not errors and not _queue_is_held(db_file)
    finally:
        holder.kill()
        holder.wait()
