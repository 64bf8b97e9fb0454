"""runtime/sqlite: with OPTIONS["pool"], a closed connection waits for the next user of the same file (the
web server closes its connections after every request), within a bound, and never carries a transaction,
an error or a file that has since been replaced."""

from __future__ import annotations

import os
import threading

import pytest
from django.db import OperationalError
from django.db.utils import ConnectionHandler


def _connection(path, pool: int = 2):
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "runtime.sqlite",
                "NAME": str(path),
                "OPTIONS": {"timeout": 5, "transaction_mode": "IMMEDIATE", "pool": pool},
            }
        }
    )
    return handler["default"]


def _raw(conn):
    conn.ensure_connection()
    return conn.connection


def _read_on_a_fresh_connection(path, not_this, query: str) -> list:
    conn = _connection(path)
    assert _raw(conn) is not not_this, "the pool handed out a connection it should have closed"
    with conn.cursor() as cursor:
        cursor.execute(query)
        rows = cursor.fetchall()
    conn.close()
    return rows


@pytest.fixture
def db_file(tmp_path, django_db_blocker):
    django_db_blocker.unblock()  # a scratch database of the test's own, not the test databases
    path = tmp_path / "pool.sqlite3"
    conn = _connection(path, pool=0)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE log (who TEXT)")
    conn.close()
    yield path
    django_db_blocker.restore()


def test_a_closed_connection_serves_the_next_request_in_another_thread(db_file):
    first = _connection(db_file)
    raw = _raw(first)
    first.close()
    seen = {}

    def request():
        conn = _connection(db_file)
        seen["raw"] = _raw(conn)
        with conn.cursor() as cursor:
            cursor.execute("INSERT INTO log VALUES ('second')")
            cursor.execute("SELECT count(*) FROM log")
            seen["count"] = cursor.fetchone()[0]
        conn.close()

    thread = threading.Thread(target=request)
    thread.start()
    thread.join(10)
    assert seen == {"raw": raw, "count": 1}


def test_the_pool_keeps_at_most_its_size(db_file):
    conns = [_connection(db_file, pool=2) for _ in range(3)]
    raws = [_raw(c) for c in conns]
    for conn in conns:
        conn.close()
    again = [_raw(_connection(db_file, pool=2)) for _ in range(3)]
    assert sum(raw in raws for raw in again) == 2  # the third was really closed; a new one took its place


def test_a_connection_closed_inside_a_transaction_is_not_kept(db_file):
    conn = _connection(db_file)
    raw = _raw(conn)
    conn.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    with conn.cursor() as cursor:
        cursor.execute("INSERT INTO log VALUES ('never')")
    conn.close()
    assert _read_on_a_fresh_connection(db_file, raw, "SELECT count(*) FROM log") == [(0,)]  # rolled back with it


def test_a_connection_that_met_an_error_is_not_kept(db_file):
    conn = _connection(db_file)
    raw = _raw(conn)
    with pytest.raises(OperationalError), conn.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    conn.close()
    assert _raw(_connection(db_file)) is not raw


def test_a_replaced_database_file_gets_a_fresh_connection(db_file):
    conn = _connection(db_file)
    raw = _raw(conn)
    conn.close()
    os.remove(db_file)
    fresh = _connection(db_file, pool=0)
    with fresh.cursor() as cursor:
        cursor.execute("CREATE TABLE log (who TEXT)")
        cursor.execute("INSERT INTO log VALUES ('new file')")
    fresh.close()
    assert _read_on_a_fresh_connection(db_file, raw, "SELECT who FROM log") == [("new file",)]


def test_without_the_option_a_closed_connection_is_closed(db_file):
    conn = _connection(db_file, pool=0)
    raw = _raw(conn)
    conn.close()
    assert _raw(_connection(db_file, pool=0)) is not raw
