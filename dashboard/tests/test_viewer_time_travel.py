"""Time travel: the board's moves in a past window, and where each order stood when it opened."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.models import EventLog
from eventbus.dispatch import Dispatcher
from eventbus.service import service

from .factories import new_order_id, record

pytestmark = pytest.mark.django_db(databases=["default", "dashboard"])


def arrived(order: str, stage_type: str, at) -> None:
    """Pretend the dashboard received this order's event of that type at `at`."""
    EventLog.objects.using("dashboard").filter(order_id=order, event_type__contains=stage_type).update(received_at=at)


def test_history_gives_the_start_of_the_window_and_its_moves(staff_client):
    now = timezone.now().replace(microsecond=0)
    a, b = new_order_id(), new_order_id()
    Dispatcher(service("dashboard")).handle(
        [record("placed", a), record("reserved", a, seconds=1), record("packed", a, seconds=2), record("placed", b)]
    )
    arrived(a, "placed", now - timedelta(minutes=30))  # before the window
    arrived(a, "reserved", now - timedelta(minutes=10))
    arrived(a, "packed", now - timedelta(minutes=5))
    arrived(b, "placed", now - timedelta(minutes=8))
    since, until = now - timedelta(minutes=15), now
    body = staff_client.get("/dashboard/api/board-history", {"since": since.isoformat(), "until": until.isoformat()})
    assert body.status_code == 200
    data = body.json()
    assert data["start"] == {a: "placed"}
    assert [(order, stage) for _, order, stage in data["events"]] == [(a, "reserved"), (b, "placed"), (a, "packed")]
    old_link = staff_client.get("/dashboard/board/replay/", {"since": since.isoformat(), "until": until.isoformat()})
    assert old_link.status_code == 302  # the replay lives under the live board now, at the same window
    assert old_link["Location"].startswith("/dashboard/?since=")
    board = staff_client.get(old_link["Location"]).content.decode()
    assert 'id="scrubber"' in board and 'data-url="/dashboard/api/board-history"' in board
    for speed in (1, 5, 15, 60):
        assert f'data-speed="{speed}"' in board


def test_orders_that_moved_before_the_window_stand_where_they_were_when_it_opened(staff_client):
    now = timezone.now().replace(microsecond=0)
    done, waiting, later = new_order_id(), new_order_id(), new_order_id()
    Dispatcher(service("dashboard")).handle(
        [record("placed", done), record("reserved", done, seconds=1), record("delivered", done, seconds=2)]
        + [record("placed", waiting), record("placed", later), record("reserved", later, seconds=1)]
    )
    for order, stage, minutes in [(done, "placed", 50), (done, "reserved", 45), (done, "delivered", 40)]:
        arrived(order, stage, now - timedelta(minutes=minutes))
    arrived(waiting, "placed", now - timedelta(minutes=20))
    arrived(later, "placed", now - timedelta(minutes=30))
    arrived(later, "reserved", now + timedelta(minutes=1))  # after the window: not yet at its start
    since, until = now - timedelta(minutes=15), now
    data = staff_client.get(
        "/dashboard/api/board-history", {"since": since.isoformat(), "until": until.isoformat()}
    ).json()
    assert data["start"] == {done: "delivered", waiting: "placed", later: "placed"}
    assert data["events"] == []


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "until must be after since"),
        ({"since": "2025-01-01T00:00:00Z", "until": "2025-01-02T00:00:00Z"}, "at most 6 h"),
        ({"since": "last week"}, "RFC 3339"),
    ],
)
def test_bad_windows_are_refused(staff_client, query, says):
    response = staff_client.get("/dashboard/api/board-history", query)
    assert response.status_code == 400 and says in response.json()["error"]
    assert staff_client.get("/dashboard/board/replay/", query).status_code == 400


def test_a_time_typed_into_a_url_with_a_plus_is_understood():
    from dashboard.viewer.params import parse_time

    assert parse_time("2025-01-31T09:30:00 00:00").isoformat() == "2025-01-31T09:30:00+00:00"
    assert parse_time("2025-01-31T09:30:00Z").isoformat() == "2025-01-31T09:30:00+00:00"
    assert parse_time("2025-01-31T09:30:00") is None  # no zone: ambiguous, refused
    assert parse_time("yesterday") is None


def test_a_dead_letter_replay_lands_in_the_operator_log():
    from django.contrib.auth.models import User

    from dashboard import dead_letters
    from dashboard.models import DeadLetter, OperatorLog

    from .factories import dead_lettered

    original = record("placed", new_order_id())
    Dispatcher(service("dashboard")).handle([original])
    Dispatcher(service("dashboard")).handle([dead_lettered(original)])
    letter = DeadLetter.objects.using("dashboard").get()
    dead_letters.replay([letter.pk], User(username="ops"))
    entry = OperatorLog.objects.using("dashboard").get()
    assert (entry.username, entry.action, entry.target) == ("ops", "replay-dead-letters", letter.original_topic)
    assert entry.detail["dead_letters"] == [letter.pk]
