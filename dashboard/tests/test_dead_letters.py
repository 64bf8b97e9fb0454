"""Dead letters: recorded from .dlt topics (decodable or not), replayed through the outbox, discarded."""

import pytest
from django.contrib.auth.models import User

from dashboard import dead_letters
from dashboard.models import DeadLetter, EventLog, OrderCard, OutboxMessage
from eventbus import strict_json
from eventbus.dispatch import Dispatcher, Record
from eventbus.outbox import RAW_TOPIC_PREFIX
from eventbus.service import service
from eventbus.testing import InMemoryBus

from .factories import dead_lettered, new_order_id, record

pytestmark = pytest.mark.django_db(databases=["default", "dashboard"])


def handle(*records):
    return Dispatcher(service("dashboard")).handle(list(records))


@pytest.fixture
def staff():
    return User.objects.create_user("ops", password="pw", is_staff=True)


def test_a_handler_error_dead_letter_is_recorded_even_though_its_event_was_seen():
    order = new_order_id()
    original = record("placed", order)
    handle(original)
    result = handle(dead_lettered(original))  # same ce_id as the event the dashboard already has
    assert result.duplicates == 0
    letter = DeadLetter.objects.using("dashboard").get()
    assert (letter.reason, letter.error, letter.group) == ("handler-error", "ValueError: boom", "conveyor.inventory")
    assert (letter.original_topic, letter.original_partition, letter.original_offset) == (
        original.topic,
        0,
        original.offset,
    )
    assert bytes(letter.value) == original.value and bytes(letter.key) == original.key
    assert not any(k.startswith("dlt_") for k in letter.headers)
    assert letter.status == "new"
    entry = EventLog.objects.using("dashboard").get(seq=letter.seq)
    assert entry.kind == "dead-letter" and entry.topic.endswith(".dlt")
    assert OrderCard.objects.using("dashboard").get().events == 1  # the dead letter does not move the card


def test_an_undecodable_dead_letter_is_recorded_through_on_poison():
    order = new_order_id()
    original = record("placed", order)
    broken = Record(original.topic, 0, 77, original.key, b"{not json", original.headers)
    letter_record = dead_lettered(broken, reason="bad-json")
    handle(letter_record, Record(original.topic, 0, 78, b"k", b"\xff\xfe", []))
    letter = DeadLetter.objects.using("dashboard").get()
    assert letter.reason == "bad-json" and bytes(letter.value) == b"{not json"
    assert letter.original_offset == 77
    kinds = sorted(EventLog.objects.using("dashboard").values_list("kind", flat=True))
    assert kinds == ["dead-letter", "poison"]  # the undecodable original is in the tail, not a dead letter


def test_replay_puts_the_original_back_through_the_outbox_and_records_who(staff):
    order = new_order_id()
    original = record("placed", order)
    handle(original)
    handle(dead_lettered(original))
    letter = DeadLetter.objects.using("dashboard").get()
    done = dead_letters.replay([letter.pk], staff)
    assert [d.pk for d in done] == [letter.pk]
    row = OutboxMessage.objects.using("dashboard").get()
    assert row.topic == RAW_TOPIC_PREFIX + original.topic
    assert bytes(row.value) == original.value and row.key == order
    assert row.headers == {k: v.decode() for k, v in original.headers}
    letter.refresh_from_db()
    assert (letter.status, letter.status_by, letter.replays) == ("replayed", "ops", 1)
    assert letter.status_at is not None


def test_a_replayed_record_reaches_the_original_topic_and_its_consumers():
    order = new_order_id()
    bus = InMemoryBus("dashboard")
    original = record("placed", order)
    letter_record = dead_lettered(original)
    bus.inject(letter_record.topic, letter_record.value, letter_record.headers, letter_record.key)
    bus.deliver()
    letter = DeadLetter.objects.using("dashboard").get()
    dead_letters.replay([letter.pk], User(username="ops"))
    bus.deliver()  # the dashboard's relay (here: the bus) sends the outbox row to the original topic
    replayed = bus.log[original.topic]
    assert len(replayed) == 1 and replayed[0].value == original.value
    assert strict_json.loads(replayed[0].value)["order_id"] == order
    assert OrderCard.objects.using("dashboard").get(order_id=order).stage == "placed"


def test_discard_is_recorded_and_a_discarded_letter_is_not_replayed(staff):
    original = record("placed", new_order_id())
    handle(original)
    handle(dead_lettered(original))
    letter = DeadLetter.objects.using("dashboard").get()
    assert [d.pk for d in dead_letters.discard([letter.pk], staff)] == [letter.pk]
    letter.refresh_from_db()
    assert (letter.status, letter.status_by) == ("discarded", "ops")
    assert dead_letters.replay([letter.pk], staff) == []
    assert not OutboxMessage.objects.using("dashboard").exists()
    assert dead_letters.discard([letter.pk], staff) == []  # already discarded


def test_a_dead_letter_in_the_same_batch_as_its_original_is_recorded():
    original = record("placed", new_order_id())
    handle(original, dead_lettered(original))
    assert DeadLetter.objects.using("dashboard").count() == 1
