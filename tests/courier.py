"""A stand-in for the Celery courier in tests on the in-memory bus: the steps shipping schedules are kept in
a list, and the test takes them when it chooses, through the same service the Celery task calls."""

from __future__ import annotations


class Courier:
    def __init__(self):
        self.scheduled: list[tuple[str, str]] = []

    def schedule_steps(self, steps) -> None:
        self.scheduled += [(str(order_id), status) for order_id, status in steps]

    def step(self, order_id: str | None = None) -> dict[str, str]:
        """Take the scheduled steps (of one order, or all), as shipping.advance_many would; return the moves."""
        from shipping.services import advance_shipments

        due = [s for s in self.scheduled if order_id is None or s[0] == str(order_id)]
        self.scheduled = [s for s in self.scheduled if s not in due]
        return advance_shipments(due) if due else {}
