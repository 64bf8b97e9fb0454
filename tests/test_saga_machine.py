"""The saga under every interleaving, on the in-memory bus (no broker): a Hypothesis state machine over the
real handlers of the shop, inventory and shipping.

Each step is one thing that can happen in production: an order placed, a cancel asked for at any moment,
the expiry sweep, a courier step, a relay, a consumer reading the next records of one topic (Kafka orders a
partition, never the topics between them, so one order's events meet each service in any order across
topics), a record dead-lettered and later replayed, a consumer group reset that redelivers everything. After
every step the invariants that hold at every moment are checked (audit/invariants.py); at the end the
system is drained, every dead letter replayed, and all the invariants must hold.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

from audit.invariants import audit, check_stock
from eventbus.service import service
from eventbus.testing import InMemoryBus
from inventory import services as inventory
from shipping import tasks as shipping_tasks
from shop.services import NotCancellable, place_order, request_cancel
from tests.courier import Courier
from tests.faults.helpers import seed

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]
)

SERVICES = ("shop", "inventory", "shipping")
ON_HAND = 6


def subscriptions() -> list[tuple[str, str]]:
    return [(name, topic) for name in SERVICES for topic in service(name).topics()]


class SagaMachine(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self):
        super().__init__()
        self.bus = InMemoryBus(*SERVICES)
        self.courier = Courier()
        self._schedule_steps = shipping_tasks.schedule_steps
        shipping_tasks.schedule_steps = self.courier.schedule_steps
        self.order_ids: list[str] = []
        self.dead: list = []  # records passed over as dead letters, not replayed yet

    @initialize()
    def stock(self):
        tag = uuid.uuid4().hex[:8]
        self.skus = [f"M-{tag}-A", f"M-{tag}-B"]
        seed(dict.fromkeys(self.skus, ON_HAND))

    @rule(target=orders, first=st.integers(0, 4), second=st.integers(0, 3))
    def place(self, first, second):
        lines = [{"sku": s, "quantity": q} for s, q in zip(self.skus, (first, second), strict=True) if q]
        placed = place_order(
            email="m@example.com",
            name="Machine",
            address="1 Loop",
            lines=lines or [{"sku": self.skus[0], "quantity": 1}],
        )
        self.order_ids.append(str(placed.order.id))
        return str(placed.order.id)

    @rule(order_id=orders)
    def cancel(self, order_id):
        try:
            request_cancel(order_id=order_id)
        except NotCancellable:
            pass

    @rule()
    def expire_reservations(self):
        inventory.request_expiry_cancels(timedelta(0))

    @rule(order_id=orders)
    def courier_step(self, order_id):
        self.courier.step(order_id)

    @rule()
    def relay(self):
        self.bus.relay()

    @rule()
    def catch_up(self):
        """A healthy moment: every consumer reads everything pending."""
        self.bus.deliver()

    @rule(pair=st.sampled_from(subscriptions()), count=st.integers(1, 3))
    def consume(self, pair, count):
        self.bus.deliver_from(*pair, count)

    @rule(pair=st.sampled_from(subscriptions()))
    def dead_letter(self, pair):
        self.dead += self.bus.deliver_from(*pair, 1, dead_letter=True)

    @precondition(lambda self: self.dead)
    @rule(index=st.integers(0, 100))
    def replay_dead_letter(self, index):
        record = self.dead.pop(index % len(self.dead))
        self.bus.inject(record.topic, record.value, record.headers, record.key)  # the same event, as staff replay it

    @rule(name=st.sampled_from(SERVICES))
    def reset_group(self, name):
        group = service(name).group
        for position in [p for p in self.bus._positions if p[0] == group]:
            self.bus._positions[position] = 0

    @invariant()
    def nothing_contradicts_the_saga(self):
        if self.order_ids:
            assert audit(order_ids=self.order_ids, quiet=False) == []

    @invariant()
    def stock_adds_up_at_every_step(self):
        if hasattr(self, "skus"):
            assert check_stock(self.skus) == []

    def teardown(self):
        try:
            if hasattr(self, "skus"):
                self._settle()
                assert audit(order_ids=self.order_ids, skus=self.skus) == []
                assert not self.bus.dead, [(d.reason, d.error) for d in self.bus.dead]
        finally:
            shipping_tasks.schedule_steps = self._schedule_steps

    def _settle(self):
        """What operators and time do: every dead letter replayed, every event delivered, every step taken."""
        for record in self.dead:
            self.bus.inject(record.topic, record.value, record.headers, record.key)
        self.dead = []
        for _ in range(50):
            self.bus.deliver()
            if not self.courier.step():
                return
        raise AssertionError("the saga did not settle")


def test_the_saga_keeps_its_invariants_under_any_interleaving():
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        SagaMachine,
        settings=settings(
            max_examples=int(os.environ.get("SAGA_MACHINE_EXAMPLES", "60")),
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
