"""Oversell on SQLite: 200 buyers for 10 units, several SKUs at once, two inventory consumers."""

import os

import pytest

from .oversell import run_oversell

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]

ROUNDS = int(os.environ.get("FAULTS_OVERSELL_ROUNDS", "5"))


def test_200_buyers_for_10_units_never_oversell_on_sqlite(stack):
    figures = run_oversell(stack, ROUNDS, 200, "sqlite")
    print(f"\noversell on SQLite: {figures}")
