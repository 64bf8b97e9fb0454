"""Inventory's writes. Every function runs in one transaction of the inventory database and publishes
the events it causes through the outbox."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import timedelta

from django.db import DatabaseError, connections, transaction
from django.db.models import F
from django.utils import timezone

from eventbus.envelope import Envelope
from eventbus.outbox import publish
from eventbus.rows import add_to_rows, insert_rows, locked_rows, present_values
from eventbus.unit_of_work import before_commit, in_unit_of_work

from .events import ReservationExpired, StockChanged, StockRejected, StockReleased, StockReserved
from .models import Reservation, ReservationLine, StockItem

DB = "inventory"
log = logging.getLogger("inventory")


def _merge(lines: list[dict]) -> dict[str, int]:
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line["sku"]] = wanted.get(line["sku"], 0) + int(line["quantity"])
    return dict(sorted(wanted.items()))  # a fixed order keeps two reservations from deadlocking


# A consumer batch's stock changes are coalesced in time: each SKU's StockChanged goes out at most every
# STOCK_ANNOUNCE_SECONDS, at the end of whichever batch (or idle moment) comes after that. The event carries
# absolute figures, so the latest one per SKU says everything a reader needs (Kafka Streams' record cache
# does the same per commit interval): a faster consumer, with smaller batches, does not send more events to
# everyone downstream. Until it is announced, a SKU is marked in the database, so a crash delays the
# announcement and never loses it. Changes outside a consumer batch (a restock, a stock-take) go out at once.
STOCK_ANNOUNCE_SECONDS = 0.25


class _StockAnnouncer:
    """This process's pace of announcements, and the event that last touched each SKU marked since."""

    def __init__(self) -> None:
        self.causes: dict[str, Envelope | None] = {}  # best effort: names each StockChanged's cause
        self.announced_at = 0.0
        self.maybe_marked = True  # a process that stopped before announcing may have left marks

    def due(self) -> bool:
        return time.monotonic() - self.announced_at >= STOCK_ANNOUNCE_SECONDS

    def touched(self, skus: list[str]) -> None:
        """The end of a batch (inside its transaction): announce every marked SKU when due, else mark these."""
        self.maybe_marked = True
        if self.due():
            self.announce_marked(extra=skus)
        else:
            StockItem.objects.using(DB).filter(sku__in=sorted(skus)).update(announce_pending=True)

    def announce_marked(self, extra: Iterable[str] = ()) -> None:
        # Locked, so that on PostgreSQL a change committed meanwhile cannot lose its mark to this announcement.
        # Rows another transaction holds are skipped, not waited for: that transaction (another copy's batch
        # or announcement) announces them or leaves them marked, and waiting serialised every copy of
        # inventory on the marked rows. (SQLite takes no row locks; there the clause is not emitted.)
        marked = list(
            StockItem.objects.using(DB)
            .select_for_update(skip_locked=True)
            .filter(announce_pending=True)
            .values_list("sku", flat=True)
        )
        skus = sorted({*marked, *extra})
        if skus:
            _publish_stock({sku: self.causes.pop(sku, None) for sku in skus})
        if marked:
            StockItem.objects.using(DB).filter(sku__in=marked).update(announce_pending=False)
        self.announced_at = time.monotonic()
        # Marks this announcement skipped stay this process's to announce too, in case their holder rolls back;
        # where rows cannot be skipped (SQLite), none is left.
        self.maybe_marked = (
            connections[DB].features.has_select_for_update_skip_locked
            and StockItem.objects.using(DB).filter(announce_pending=True).exists()
        )


announcer = _StockAnnouncer()


def announce_pending_stock() -> None:
    """Between polls: announce what earlier batches marked, once due (the end of a burst waits no longer)."""
    if announcer.maybe_marked and announcer.due():
        try:
            with transaction.atomic(using=DB):
                announcer.announce_marked()
        except DatabaseError as exc:  # the marks stay; the next batch or idle moment tries again
            log.warning("stock changes not announced yet (database unavailable: %s); retrying", exc)


def _announce(skus, caused_by: Envelope | None) -> None:
    if not in_unit_of_work(DB):
        _publish_stock(dict.fromkeys(skus, caused_by))
        return
    for sku in skus:
        announcer.causes[sku] = caused_by
        before_commit(DB, announcer.touched, sku)


def _publish_stock(causes: dict[str, Envelope | None]) -> None:
    """One StockChanged per SKU (in SKU order), each naming the event that last touched it; one read."""
    for item in StockItem.objects.using(DB).filter(sku__in=list(causes)).order_by("sku"):
        publish(StockChanged(item.sku, item.on_hand, item.reserved, item.available), caused_by=causes[item.sku])


def reserve_stock(requests: list[tuple[str, list[dict], Envelope | None]]) -> list[bool]:
    """For each (order id, lines, cause), in order: reserve every line or none, and publish StockReserved
    or StockRejected. Says for each whether its order holds a reservation now. A few statements for all.

    The stock rows are read under lock (the whole database on SQLite, the rows on PostgreSQL), each order
    is decided in memory against what the orders before it took, and each SKU is written once. The
    conditional UPDATE and the CHECK constraint still refuse an oversell if anything else went wrong.
    """
    with transaction.atomic(using=DB):
        ids = [str(order_id) for order_id, _, _ in requests]
        done = present_values(Reservation, "order_id", ids, using=DB)
        wanted = [_merge(lines) for _, lines, _ in requests]
        skus = sorted({sku for w in wanted for sku in w})
        stock = {item.sku: item for item in locked_rows(StockItem, skus, using=DB)}
        taken: dict[str, int] = {}
        reservations, outcomes = [], []
        for (order_id, _, caused_by), want in zip(requests, wanted, strict=True):
            if str(order_id) in done:  # reserved before, or cancelled before its OrderPlaced came (a replay)
                log.info("order %s was already decided (reserved, released or cancelled); nothing to do", order_id)
                outcomes.append(True)
                continue
            done.add(str(order_id))
            free = {sku: stock[sku].available - taken.get(sku, 0) for sku in want if sku in stock}
            short = [sku for sku, quantity in want.items() if free.get(sku, 0) < quantity]
            if short:
                reasons = [
                    {
                        "sku": sku,
                        "requested": want[sku],
                        "available": free.get(sku, 0),
                        "reason": "insufficient-stock" if sku in stock else "unknown-sku",
                    }
                    for sku in short
                ]
                publish(StockRejected(str(order_id), reasons), caused_by=caused_by)
                outcomes.append(False)
                continue
            for sku, quantity in want.items():
                taken[sku] = taken.get(sku, 0) + quantity
            reservations.append((order_id, want))
            publish(
                StockReserved(str(order_id), [{"sku": s, "quantity": q} for s, q in want.items()]), caused_by=caused_by
            )
            _announce(want, caused_by)
            outcomes.append(True)
        # Conditional: should the rows have changed under us, this refuses rather than oversells.
        refused = add_to_rows(StockItem, "reserved", taken, using=DB, at_most="on_hand")
        if refused:
            raise RuntimeError(
                f"stock of {', '.join(refused)} changed while reserving; the batch is retried order by order"
            )
        insert_rows([Reservation(order_id=order_id) for order_id, _ in reservations], using=DB)
        insert_rows(
            [
                ReservationLine(reservation_id=order_id, sku=sku, quantity=quantity)
                for order_id, want in reservations
                for sku, quantity in want.items()
            ],
            using=DB,
        )
        return outcomes


def _settle(order_id: str, status: str) -> list[ReservationLine] | None:
    """Move an active reservation to `status` and return its lines; None when none was active."""
    updated = (
        Reservation.objects.using(DB)
        .filter(order_id=order_id, status=Reservation.Status.ACTIVE)
        .update(status=status, updated_at=timezone.now())
    )
    return list(ReservationLine.objects.using(DB).filter(reservation_id=order_id)) if updated else None


def release_reservation(order_id: str, reason: str = "cancelled", caused_by: Envelope | None = None) -> bool:
    """Shipping confirmed the order's cancel: give its reserved units back (compensation). False when there
    was nothing to release. An order not reserved yet is remembered as released, so that its OrderPlaced,
    late or replayed, reserves nothing."""
    with transaction.atomic(using=DB):
        lines = _settle(order_id, Reservation.Status.RELEASED)
        if lines is None:
            _, created = Reservation.objects.using(DB).get_or_create(
                order_id=order_id, defaults={"status": Reservation.Status.RELEASED}
            )
            log.info(
                "order %s had no active reservation to release%s",
                order_id,
                "; remembered as cancelled" if created else "",
            )
            return False
        for line in lines:
            StockItem.objects.using(DB).filter(sku=line.sku).update(reserved=F("reserved") - line.quantity)
        publish(
            StockReleased(order_id, [{"sku": ln.sku, "quantity": ln.quantity} for ln in lines], reason),
            caused_by=caused_by,
        )
        _announce([ln.sku for ln in lines], caused_by)
        return True


def consume_reservations(dispatches: list[tuple[str, Envelope | None]]) -> list[bool]:
    """The goods of each (order id, cause) left the warehouse: its reserved units leave the stock. One read
    of the reservations, one write per SKU; says for each whether it consumed a reservation."""
    with transaction.atomic(using=DB):
        ids = [str(order_id) for order_id, _ in dispatches]
        active = {
            str(i)
            for i in Reservation.objects.using(DB)
            .select_for_update()
            .filter(order_id__in=ids, status=Reservation.Status.ACTIVE)
            .values_list("order_id", flat=True)
        }
        lines: dict[str, list[ReservationLine]] = {}
        for line in ReservationLine.objects.using(DB).filter(reservation_id__in=active).order_by("sku"):
            lines.setdefault(str(line.reservation_id), []).append(line)
        outcomes, consumed, leaving = [], [], {}
        for order_id, caused_by in dispatches:
            if str(order_id) not in active:
                log.warning("dispatch of order %s found no active reservation; stock unchanged", order_id)
                outcomes.append(False)
                continue
            active.discard(str(order_id))  # the same dispatch twice in one batch consumes once
            consumed.append(str(order_id))
            for line in lines.get(str(order_id), []):
                leaving[line.sku] = leaving.get(line.sku, 0) + line.quantity
            _announce([line.sku for line in lines.get(str(order_id), [])], caused_by)
            outcomes.append(True)
        Reservation.objects.using(DB).filter(order_id__in=consumed).update(
            status=Reservation.Status.CONSUMED, updated_at=timezone.now()
        )
        leaving_stock = {sku: -quantity for sku, quantity in leaving.items()}
        # reserved first: the CHECK (reserved <= on_hand) holds after each statement
        add_to_rows(StockItem, "reserved", leaving_stock, using=DB)
        add_to_rows(StockItem, "on_hand", leaving_stock, using=DB)
        return outcomes


def restock(sku: str, quantity: int) -> StockItem:
    """Add units (creating the SKU if new) and tell the storefront."""
    if quantity <= 0:
        raise ValueError("restock quantity must be positive")
    with transaction.atomic(using=DB):
        item, _ = StockItem.objects.using(DB).get_or_create(sku=sku)
        StockItem.objects.using(DB).filter(sku=sku).update(
            on_hand=F("on_hand") + quantity, received=F("received") + quantity
        )
        _announce([sku], None)
        item.refresh_from_db(using=DB)
        return item


def set_stock(sku: str, on_hand: int) -> StockItem:
    """Set a SKU's units on hand (seeding, stock-takes). Never below what is reserved."""
    with transaction.atomic(using=DB):
        item = StockItem.objects.using(DB).select_for_update().filter(sku=sku).first() or StockItem(sku=sku)
        counted = max(on_hand, item.reserved)
        item.received += counted - item.on_hand
        item.on_hand = counted
        item.save(using=DB)
        _announce([sku], None)
        return item


def request_expiry_cancels(older_than: timedelta) -> int:
    """The sweep: a reservation held too long asks, once, for its order to be cancelled. Shipping decides,
    as for any cancel: only its confirmation releases the units (see release_reservation)."""
    cutoff = timezone.now() - older_than
    with transaction.atomic(using=DB):
        stale = list(
            Reservation.objects.using(DB)
            .select_for_update()
            .filter(status=Reservation.Status.ACTIVE, created_at__lt=cutoff, expiry_requested_at__isnull=True)
            .values_list("order_id", "created_at")[:500]
        )
        for order_id, held_since in stale:
            publish(ReservationExpired(str(order_id), held_since.isoformat()), correlation_id=str(order_id))
        Reservation.objects.using(DB).filter(order_id__in=[o for o, _ in stale]).update(
            expiry_requested_at=timezone.now()
        )
    return len(stale)
