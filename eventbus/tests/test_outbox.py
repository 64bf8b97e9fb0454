import pytest
from django.db import transaction

from eventbus.outbox import publish
from inventory.events import StockChanged
from inventory.models import OutboxMessage


@pytest.mark.django_db(databases=["inventory"])
def test_a_rolled_back_transaction_publishes_nothing():
    with pytest.raises(RuntimeError), transaction.atomic(using="inventory"):
        publish(StockChanged("MUG-001", 5, 0, 5))
        assert OutboxMessage.objects.using("inventory").count() == 1
        raise RuntimeError("the domain write failed")
    assert OutboxMessage.objects.using("inventory").count() == 0


@pytest.mark.django_db(databases=["inventory"], transaction=True)
def test_publish_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside transaction.atomic"):
        publish(StockChanged("MUG-001", 5, 0, 5))


@pytest.mark.django_db(databases=["inventory"])
def test_publish_validates_before_the_outbox():
    from eventbus.schemas import SchemaRejected

    with pytest.raises(SchemaRejected), transaction.atomic(using="inventory"):
        publish(StockChanged("MUG-001", -1, 0, 5))
    assert OutboxMessage.objects.using("inventory").count() == 0
