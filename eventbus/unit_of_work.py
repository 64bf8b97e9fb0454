"""The unit of work: what a transaction leaves to do just before it commits and once it has.

- `after_commit(using, action, item)`: once the transaction on the database `using` commits, `action` runs
  with the item (the relays to wake, the orders whose followers to notify, the courier steps to schedule).
  Inside a `unit_of_work(using)` block each action runs once after the commit, with every item collected
  for it, in the order they came and without repeats: a batch that publishes five hundred events wakes its
  relay once. Elsewhere it runs once per item. Either way, what a rolled-back savepoint collected is
  dropped (Django's `on_commit` carries each item), and an action that raises is logged and never undoes
  the commit.
- `before_commit(using, action, item)`: inside a `unit_of_work(using)` block, each action runs once at the end
  of the block, inside its transaction, with every item collected (for example to publish one coalesced
  event for many changes). Outside such a block the action runs at once.

The consumer's batches and the courier's tasks are units of work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from functools import partial

from django.db import transaction

log = logging.getLogger("eventbus")
Action = Callable[[list], None]


class _Unit:
    def __init__(self, *, outermost: bool) -> None:
        self.outermost = outermost  # only then does its commit happen at the end of the block
        self.before: dict[Action, dict[Hashable, None]] = {}
        self.after: dict[Action, dict[Hashable, None]] = {}


class _Open(threading.local):
    def __init__(self) -> None:
        self.units: dict[str, _Unit] = {}


_open = _Open()


@contextmanager
def unit_of_work(using: str) -> Iterator[None]:
    """A transaction on `using` that runs its before-commit actions at its end and its after-commit actions,
    each once, after it commits."""
    if using in _open.units:  # nested: the enclosing unit collects for both
        with transaction.atomic(using=using):
            yield
        return
    unit = _open.units[using] = _Unit(outermost=not transaction.get_connection(using).in_atomic_block)
    try:
        with transaction.atomic(using=using):
            yield
            while unit.before:  # an action may collect for another
                actions, unit.before = unit.before, {}
                for action, items in actions.items():
                    action(list(items))
    finally:
        del _open.units[using]
    for action, items in unit.after.items():
        _run(action, list(items))


def in_unit_of_work(using: str) -> bool:
    return using in _open.units


def after_commit(using: str, action: Action, item: Hashable) -> None:
    """Run `action` with `item` once the current transaction on `using` commits (see the module's text)."""
    unit = _open.units.get(using)
    if unit is not None and unit.outermost:
        transaction.on_commit(partial(_collect, unit.after, action, item), using=using)
    else:
        transaction.on_commit(partial(_run, action, [item]), using=using)


def before_commit(using: str, action: Action, item: Hashable) -> None:
    """Run `action` with `item` (and the others collected) at the end of the open unit of work on `using`;
    at once if none is open."""
    unit = _open.units.get(using)
    if unit is None:
        action([item])
    else:
        unit.before.setdefault(action, {})[item] = None


def _collect(collected: dict, action: Action, item: Hashable) -> None:
    collected.setdefault(action, {})[item] = None


def _run(action: Action, items: list) -> None:
    try:
        action(items)
    except Exception:
        log.exception("an after-commit action (%s) failed; the committed work stands", action.__qualname__)
