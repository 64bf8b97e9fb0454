"""Property: whatever order, duplication or reordering the saga's events arrive in (they travel on
different topics), the shop's order ends in a legal state, and its history is a legal prefix of a path."""

import uuid

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventbus.envelope import Envelope
from shop import services
from shop.models import Order
from shop.stages import EXITS, MAIN_PATH, STAGES, path_to

TARGETS = ("reserved", "packed", "dispatched", "delivered", "rejected", "cancelled")
# Duplicates and any order: a list of targets drawn with replacement, reordered by Hypothesis at will.
EVENT_STREAMS = st.lists(st.sampled_from(TARGETS), max_size=14)


def is_legal_history(history: list[str]) -> bool:
    """placed, then a prefix of the main path, then at most one exit reachable from where it left."""
    main = [s for s in history if s in MAIN_PATH]
    exits = [s for s in history if s in EXITS]
    if not history or history[0] != "placed" or main != list(MAIN_PATH[: len(main)]):
        return False
    if len(set(history)) != len(history) or len(exits) > 1:
        return False
    return not exits or (history[-1] == exits[0] and main[-1] in EXITS[exits[0]])


def fold(events: list[str]) -> list[str]:
    """The model: the history that applying `events` with `path_to` alone would record."""
    history = ["placed"]
    for target in events:
        history += path_to(history[-1], target)
    return history


@given(EVENT_STREAMS)
@settings(max_examples=1000)
def test_path_to_only_ever_builds_legal_histories(events):
    history = fold(events)
    assert is_legal_history(history)
    for here, there in zip(history, history[1:], strict=False):
        assert path_to(here, there) == [there]  # every recorded step is a single legal move


@pytest.mark.parametrize("status", STAGES)
def test_a_state_never_moves_to_itself_or_backwards(status):
    assert path_to(status, status) == []
    if status in MAIN_PATH:
        for earlier in MAIN_PATH[: MAIN_PATH.index(status)]:
            assert path_to(status, earlier) == []
    if status in EXITS or status == "delivered":
        assert all(path_to(status, t) == [] for t in STAGES)  # terminal


def event_for(order_id: str, target: str) -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        type=f"conveyor.test.{target}.v1",
        source="/conveyor/test",
        subject=order_id,
        time=timezone.now(),
        data={"order_id": order_id},
        correlation_id=order_id,
    )


@pytest.mark.django_db(databases=["default", "shop"])
@given(events=EVENT_STREAMS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_follow_saga_keeps_every_order_legal(place, events):
    order_id = str(place().order.id)  # a fresh order per example

    moved = [services.follow_saga([services.SagaStep(order_id, t, event_for(order_id, t))])[0] for t in events]

    order = Order.objects.using("shop").get(id=order_id)
    history = list(order.history.order_by("at", "id").values_list("status", flat=True))
    assert order.status in STAGES
    assert is_legal_history(history), history
    assert history[-1] == order.status
    assert history == fold(events)
    # follow_saga says True exactly when it recorded something.
    assert [bool(m) for m in moved] == [bool(path_to(fold(events[:i])[-1], t)) for i, t in enumerate(events)]
