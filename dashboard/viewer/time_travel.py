"""The stage board as it was: the events of a past window from the dashboard's event log, and where each
order stood when the window opened (the orders the window moves, and the BOARD_BEFORE orders that moved
last before it, as the board showed them), for the page to replay at any speed.

Moments are arrival times at the dashboard (`received_at`, indexed): the board at a moment showed exactly
the events received by then, lag included, which is what an incident review wants to see again. Bounded: a
window is at most MAX_WINDOW long and MAX_EVENTS events, and the board before it is read from at most
LOOKBACK_EVENTS events."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..models import EventLog
from ..stages import STAGE_OF_TYPE, should_move, stage_for

DB = "dashboard"
MAX_WINDOW = timedelta(hours=6)
MAX_EVENTS = 20_000
CHUNK = 500  # order ids per IN (…) query
BOARD_BEFORE = 7 * 150  # the live board shows the newest 150 cards of each of its seven columns
LOOKBACK_EVENTS = 10_000  # the newest events before the window searched for those orders


class BadWindow(ValueError):
    pass


def check(since: datetime, until: datetime) -> None:
    if until <= since:
        raise BadWindow("until must be after since; choose a later end or an earlier start")
    if until - since > MAX_WINDOW:
        raise BadWindow(f"a window of at most {MAX_WINDOW.total_seconds() / 3600:.0f} h; narrow it")


def history(since: datetime, until: datetime) -> dict:
    check(since, until)
    moves = (
        EventLog.objects.using(DB)
        .filter(kind=EventLog.Kind.EVENT, event_type__in=list(STAGE_OF_TYPE))
        .exclude(order_id="")
        .filter(received_at__gte=since, received_at__lte=until)
        .order_by("received_at", "seq")
        .values_list("received_at", "order_id", "event_type")[: MAX_EVENTS + 1]
    )
    rows = list(moves)
    if len(rows) > MAX_EVENTS:
        raise BadWindow(f"more than {MAX_EVENTS} events in this window; narrow it")
    recent = (
        EventLog.objects.using(DB)
        .filter(kind=EventLog.Kind.EVENT, event_type__in=list(STAGE_OF_TYPE), received_at__lt=since)
        .exclude(order_id="")
        .order_by("-received_at", "-seq")
        .values_list("order_id", flat=True)[:LOOKBACK_EVENTS]
    )
    on_board = list(dict.fromkeys(recent))[:BOARD_BEFORE]
    orders = sorted({order for _, order, _ in rows} | set(on_board))
    before: dict[str, str] = {}
    for i in range(0, len(orders), CHUNK):
        earlier = (
            EventLog.objects.using(DB)
            .filter(order_id__in=orders[i : i + CHUNK], kind=EventLog.Kind.EVENT, received_at__lt=since)
            .order_by("received_at", "seq")
            .values_list("order_id", "event_type")
        )
        for order, event_type in earlier:
            stage = stage_for(event_type)
            if stage and should_move(before.get(order), stage):
                before[order] = stage
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "start": before,
        "events": [[t.isoformat(), order, stage_for(event_type)] for t, order, event_type in rows],
    }
