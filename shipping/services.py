"""Shipping's writes: prepare a shipment, then move it packed → dispatched → delivered."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from eventbus.envelope import Envelope
from eventbus.outbox import publish
from eventbus.rows import insert_rows, locked_rows, update_rows
from eventbus.unit_of_work import after_commit, unit_of_work

from .events import ShipmentCancelled, ShipmentCancelRefused, ShipmentDelivered, ShipmentDispatched, ShipmentPacked
from .models import Shipment

DB = "shipping"
log = logging.getLogger("shipping")
S = Shipment.Status
NEXT = {
    S.READY: (S.PACKED, ShipmentPacked),
    S.PACKED: (S.DISPATCHED, ShipmentDispatched),
    S.DISPATCHED: (S.DELIVERED, ShipmentDelivered),
}


def _schedule(steps: list[tuple[str, str]]) -> None:
    """After commit, the steps of the whole transaction go to the courier together (tasks.schedule_steps)."""
    for step in steps:
        after_commit(DB, _to_courier, step)


def _to_courier(steps: list[tuple[str, str]]) -> None:
    from .tasks import schedule_steps

    schedule_steps(steps)


def _locked(order_id: str) -> Shipment:
    shipment, _ = Shipment.objects.using(DB).select_for_update().get_or_create(order_id=order_id)
    return shipment


@dataclass(frozen=True)
class SagaFact:
    """What shipping learnt about an order: where it goes (from OrderPlaced) or that its stock is held."""

    order_id: str
    caused_by: Envelope | None
    address: tuple[str, str] | None = None
    stock_reserved: bool = False


def note_saga_facts(facts: list[SagaFact]) -> list[Shipment]:
    """A shipment becomes ready once both facts are known, in either order; then its first step is
    scheduled. One read and two writes for any number of facts."""
    with unit_of_work(DB):
        ids = {str(fact.order_id) for fact in facts}
        shipments = {str(s.order_id): s for s in locked_rows(Shipment, ids, using=DB)}
        existing, touched, ready = set(shipments), [], []
        for fact in facts:
            shipment = shipments.setdefault(str(fact.order_id), Shipment(order_id=fact.order_id))
            if fact.address is not None:
                (shipment.name, shipment.address), shipment.address_known = fact.address, True
            shipment.stock_reserved = shipment.stock_reserved or fact.stock_reserved
            if shipment.status == S.WAITING and shipment.address_known and shipment.stock_reserved:
                shipment.status = S.READY
                shipment.last_event_id = fact.caused_by.id if fact.caused_by else ""
                ready.append((str(shipment.order_id), S.READY))
            touched.append(shipment)  # updated_at is auto_now: insert_rows and update_rows set it
        insert_rows([s for o, s in shipments.items() if o not in existing], using=DB)
        update_rows(
            [shipments[o] for o in existing],
            ["name", "address", "address_known", "stock_reserved", "status", "last_event_id", "updated_at"],
            using=DB,
        )
        _schedule(ready)
        return touched


@dataclass(frozen=True)
class CancelRequest:
    """Someone asked for an order's cancel: the shop (a customer or staff) or inventory (an expired hold)."""

    order_id: str
    reason: str
    caused_by: Envelope | None = None


STOPPABLE = (S.WAITING, S.READY, S.PACKED)  # not yet with the courier


def decide_cancels(requests: list[CancelRequest]) -> dict[str, str]:
    """Shipping owns the dispatch, the saga's pivot, so it decides each cancel: a shipment not yet
    dispatched is stopped for good (ShipmentCancelled), one already dispatched goes on
    (ShipmentCancelRefused). An order shipping has not heard of yet is remembered as cancelled, so its
    late facts start nothing. Each order gets one answer, however often it is asked.
    Returns {order_id: "cancelled" | "refused"} for the answers given now."""
    with unit_of_work(DB):
        ids = {str(r.order_id) for r in requests}
        shipments = {str(s.order_id): s for s in locked_rows(Shipment, ids, using=DB)}
        new, changed, answers = [], [], {}
        for request in requests:
            order_id = str(request.order_id)
            shipment = shipments.get(order_id)
            if shipment is None:
                shipment = shipments[order_id] = Shipment(order_id=order_id, status=S.WAITING)
                new.append(shipment)
            elif shipment not in changed:
                changed.append(shipment)
            if shipment.status in STOPPABLE:
                shipment.status = S.CANCELLED
                event = ShipmentCancelled(order_id, str(shipment.shipment_id), request.reason[:200])
                answers[order_id] = "cancelled"
            elif shipment.status in (S.DISPATCHED, S.DELIVERED) and not shipment.cancel_refused:
                shipment.cancel_refused = True
                event = ShipmentCancelRefused(order_id, str(shipment.shipment_id), f"already-{shipment.status}")
                answers[order_id] = "refused"
                log.info("order %s: cancel refused, the shipment is already %s", order_id, shipment.status)
            else:
                continue  # already answered
            sent = publish(event, caused_by=request.caused_by, correlation_id=order_id)
            shipment.last_event_id = sent.id
        insert_rows(new, using=DB)
        update_rows(changed, ["status", "cancel_refused", "last_event_id", "updated_at"], using=DB)
        return answers


def advance_shipments(steps: list[tuple[str, str]], *, to_the_end: bool = False) -> dict[str, str]:
    """Take the next courier step of each shipment that is still at its expected status, in one
    transaction; return {order_id: new status} for those that moved. The next steps of the whole lot
    are scheduled together after commit.

    With `to_the_end`, each of them takes every step left in this transaction (packed, dispatched and
    delivered published together): what the courier does when it waits 0 s between steps, since nothing
    could come between them.

    Idempotent: a duplicate or late step finds its shipment elsewhere and does nothing.
    """
    expected: dict[str, set[str]] = {}
    for order_id, status in steps:
        expected.setdefault(str(order_id), set()).add(status)
    moved: dict[str, str] = {}
    with unit_of_work(DB):
        # One order of locks for every batch, so two batches that share a shipment cannot deadlock.
        changed = []
        for shipment in locked_rows(Shipment, expected, using=DB):
            order_id = str(shipment.order_id)
            if shipment.status not in expected[order_id] or shipment.status not in NEXT:
                continue
            while shipment.status in NEXT:
                status, event = NEXT[shipment.status]
                sent = publish(
                    event(order_id, str(shipment.shipment_id)),
                    correlation_id=order_id,
                    causation_id=shipment.last_event_id or None,
                )
                shipment.status, shipment.last_event_id = status, sent.id
                if not to_the_end:
                    break
            changed.append(shipment)
            moved[order_id] = shipment.status
        update_rows(changed, ["status", "last_event_id", "updated_at"], using=DB)
        _schedule([(order_id, status) for order_id, status in moved.items() if status in NEXT])
    return moved


def reschedule_stalled(older_than: timedelta) -> int:
    """The sweep: a step whose task was lost (Redis down when it was scheduled) is scheduled again."""
    from .tasks import schedule_steps

    cutoff = timezone.now() - older_than
    stalled = Shipment.objects.using(DB).filter(status__in=list(NEXT), updated_at__lt=cutoff)
    steps = [(str(order_id), status) for order_id, status in stalled.values_list("order_id", "status")[:500]]
    schedule_steps(steps)
    return len(steps)
