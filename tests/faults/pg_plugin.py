"""Run the whole suite on PostgreSQL: with CONVEYOR_TEST_POSTGRES=1, this plugin starts a throwaway
PostgreSQL before Django is configured and points every database alias at it (pytest-django then creates
and migrates `test_conveyor_<alias>` there, and the real subprocesses of the integration tests get those
URLs from the `stack_env` fixture). Without the variable it does nothing.

Load it early, before pytest-django reads the settings:  pytest -p tests.faults.pg_plugin
(or `addopts = "... -p tests.faults.pg_plugin"` in pyproject.toml; `pytest_plugins` in conftest.py is too late).
"""

from __future__ import annotations

import os

import pytest

_server = None


def enabled() -> bool:
    return os.environ.get("CONVEYOR_TEST_POSTGRES", "").strip().lower() in {"1", "true", "yes", "on"}


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    global _server
    if not enabled() or _server is not None:
        return
    from tests.faults.postgres import URL_VARS, PostgresServer

    _server = PostgresServer().init().start()
    _server.sql(*(f'CREATE DATABASE "conveyor_{alias}"' for alias in URL_VARS))
    for alias, var in URL_VARS.items():
        os.environ[var] = _server.url(f"conveyor_{alias}")


def pytest_report_header(config):
    if _server is not None:
        return f"databases: PostgreSQL on 127.0.0.1:{_server.port} ({_server.bin.parent.name}), one per app"
    return None


def pytest_unconfigure(config):
    global _server
    if _server is not None:
        _server.destroy()
        _server = None
