"""Shipping's writes: prepare a shipment, then move it packed → dispatched → delivered."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from eventbus.envelope import Envelope
from eventbus.outbox import publish
from eventbus.rows import update_rows

from .events import ShipmentDelivered, ShipmentDispatched, ShipmentPacked
from .models import Shipment

DB = "shipping"
log = logging.getLogger("shipping")
S = Shipment.Status
NEXT = {
    S.READY: (S.PACKED, ShipmentPacked),
    S.PACKED: (S.DISPATCHED, ShipmentDispatched),
    S.DISPATCHED: (S.DELIVERED, ShipmentDelivered),
}


def _schedule(order_id: str, status: str) -> None:
    from .tasks import schedule_step

    transaction.on_commit(lambda: schedule_step(order_id, status), using=DB)


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
    with transaction.atomic(using=DB):
        ids = {str(fact.order_id) for fact in facts}
        shipments = {
            str(s.order_id): s for s in Shipment.objects.using(DB).select_for_update().filter(order_id__in=ids)
        }
        existing, touched = set(shipments), []
        for fact in facts:
            shipment = shipments.setdefault(str(fact.order_id), Shipment(order_id=fact.order_id))
            if fact.address is not None:
                (shipment.name, shipment.address), shipment.address_known = fact.address, True
            shipment.stock_reserved = shipment.stock_reserved or fact.stock_reserved
            if shipment.status == S.WAITING and shipment.address_known and shipment.stock_reserved:
                shipment.status = S.READY
                shipment.last_event_id = fact.caused_by.id if fact.caused_by else ""
                _schedule(str(shipment.order_id), S.READY)
            touched.append(shipment)  # updated_at is auto_now: bulk_create and update_rows set it
        Shipment.objects.using(DB).bulk_create([s for o, s in shipments.items() if o not in existing])
        update_rows(
            [shipments[o] for o in existing],
            ["name", "address", "address_known", "stock_reserved", "status", "last_event_id", "updated_at"],
            using=DB,
        )
        return touched


def cancel_shipment(order_id: str) -> bool:
    """A cancelled order's pending steps do nothing. Too late once the courier has it."""
    with transaction.atomic(using=DB):
        shipment = _locked(order_id)
        if shipment.status in (S.DISPATCHED, S.DELIVERED):
            log.warning("order %s was cancelled after dispatch; the shipment goes on", order_id)
            return False
        shipment.status = S.CANCELLED
        shipment.save(using=DB)
        return True


def advance_shipment(order_id: str, expected: str) -> str | None:
    """Take the next courier step if the shipment is still at `expected`; return the new status.

    Idempotent: a duplicate or late task finds the shipment elsewhere and does nothing.
    """
    with transaction.atomic(using=DB):
        shipment = Shipment.objects.using(DB).select_for_update().filter(order_id=order_id).first()
        if shipment is None or shipment.status != expected or expected not in NEXT:
            return None
        status, event = NEXT[expected]
        sent = publish(
            event(str(shipment.order_id), str(shipment.shipment_id)),
            correlation_id=str(shipment.order_id),
            causation_id=shipment.last_event_id or None,
        )
        shipment.status, shipment.last_event_id = status, sent.id
        shipment.save(using=DB)
        if status in NEXT:
            _schedule(order_id, status)
        return status


def reschedule_stalled(older_than: timedelta) -> int:
    """The sweep: a step whose task was lost (Redis down when it was scheduled) is scheduled again."""
    from .tasks import schedule_step

    cutoff = timezone.now() - older_than
    stalled = Shipment.objects.using(DB).filter(status__in=list(NEXT), updated_at__lt=cutoff)
    count = 0
    for order_id, status in stalled.values_list("order_id", "status")[:500]:
        schedule_step(str(order_id), status)
        count += 1
    return count
