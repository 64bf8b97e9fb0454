"""/metrics reads consumer lag from the broker at scrape time, so a consumer that died shows its lag growing
(its own gauge died with it), and a broker that does not answer is a flag in the metrics, never an error."""

import re

import pytest

from eventbus import kafka_io
from eventbus.service import service
from tests.support import free_port, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]


def _group_lag(client, group: str) -> int | None:
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "conveyor_group_lag_up 1" in text, text[-2000:]
    found = re.search(rf'^conveyor_group_lag_total{{group="{re.escape(group)}"}} (\d+)$', text, re.M)
    return int(found[1]) if found else None


def test_a_dead_consumer_shows_growing_lag_in_metrics(stack, client, settings):
    settings.CONSUMER_LAG_CACHE_SECONDS = 0
    inventory = service("inventory")
    topic = inventory.topics()[0]
    producer = kafka_io.make_producer("lag-test")

    def publish(n: int) -> None:
        for i in range(n):
            producer.send(topic, key=f"k{i}".encode(), value=b"not an event")  # dead-lettered, then committed
        producer.flush(30)

    stack.consumer("inventory")
    publish(3)
    wait_for(lambda: _group_lag(client, inventory.group) == 0, 60, "the inventory group to commit what it read")

    stack.kill("inventory")  # dies without a word: nothing of its own reports lag any more
    publish(7)
    wait_for(lambda: _group_lag(client, inventory.group) == 7, 30, "the dead group's lag to show 7 records")
    publish(5)
    wait_for(lambda: _group_lag(client, inventory.group) == 12, 30, "the dead group's lag to grow to 12")
    producer.close()


def test_a_broker_away_is_a_flag_in_metrics_not_an_error(client, settings):
    from eventbus.lag_scrape import ScrapedLag

    settings.CONSUMER_LAG_CACHE_SECONDS = 0
    settings.CONSUMER_LAG_SCRAPE_TIMEOUT_SECONDS = 1
    settings.KAFKA = {**settings.KAFKA, "bootstrap_servers": f"127.0.0.1:{free_port()}"}
    text = ScrapedLag().text().decode()
    assert "conveyor_group_lag_up 0" in text
    assert "conveyor_group_lag_total{" not in text
