"""An in-memory bus for unit tests: moves outbox rows to the subscribed services' handlers, with the
same decoding, inbox and dead-letter rules as the Kafka runner, but no broker. It never stands in for the
integration tests, which run the real runner against the real broker."""

from __future__ import annotations

from collections import defaultdict

from django.utils import timezone

from .dispatch import DeadLetter, Dispatcher, Record
from .envelope import Envelope
from .outbox import physical_topic
from .service import Service, service


class InMemoryBus:
    def __init__(self, *names: str):
        self.services: list[Service] = [service(n) for n in names]
        self.log: dict[str, list[Record]] = defaultdict(list)  # physical topic -> records, in order
        self.dead: list[DeadLetter] = []
        self._positions: dict[tuple[str, str], int] = defaultdict(int)  # (group, topic) -> next index

    def relay(self) -> int:
        """Move what the services' outboxes hold onto the topics, as their relays would."""
        return self._drain_outboxes()

    def _drain_outboxes(self) -> int:
        moved = 0
        for svc in self.services:
            rows = svc.outbox.objects.using(svc.database).filter(sent_at__isnull=True).order_by("position")
            for row in rows:
                self.inject(
                    physical_topic(row.topic),
                    bytes(row.value),
                    [(k, v.encode()) for k, v in row.headers.items()],
                    row.key.encode(),
                )
                moved += 1
            rows.update(sent_at=timezone.now())
        return moved

    def inject(
        self, topic: str, value: bytes | None, headers: list[tuple[str, bytes]], key: bytes | None = None
    ) -> None:
        """Append a raw record to a topic, as a producer would."""
        records = self.log[topic]
        records.append(Record(topic, 0, len(records), key, value, headers))

    def deliver(self, max_rounds: int = 100) -> int:
        """Relay and consume until nothing moves; return how many records were delivered."""
        delivered = 0
        for _ in range(max_rounds):
            self._drain_outboxes()
            moved = 0
            for svc in self.services:
                topics = set(svc.topics())
                for topic, records in list(self.log.items()):
                    if topic not in topics:
                        continue
                    start = self._positions[(svc.group, topic)]
                    batch = records[start:]
                    if not batch:
                        continue
                    self._positions[(svc.group, topic)] = len(records)
                    result = Dispatcher(svc).handle(batch)
                    for letter in result.dead:
                        self.dead.append(letter)
                        self.inject(topic + ".dlt", letter.record.value, letter.record.headers, letter.record.key)
                    moved += len(batch)
            delivered += moved
            if not moved and not self._pending():
                return delivered
        raise AssertionError(f"the bus did not settle in {max_rounds} rounds")

    def _pending(self) -> bool:
        return any(
            svc.outbox.objects.using(svc.database).filter(sent_at__isnull=True).exists() for svc in self.services
        )

    def backlog(self, name: str, topic: str) -> int:
        """How many records of `topic` the service `name` has not consumed yet."""
        svc = service(name)
        return len(self.log.get(topic, [])) - self._positions[(svc.group, topic)]

    def deliver_from(self, name: str, topic: str, count: int = 1, *, dead_letter: bool = False) -> list[Record]:
        """Hand the service `name` its next `count` records of one topic (Kafka orders a partition, not the
        topics between them, so any interleaving of topics can happen). With `dead_letter`, the records are
        passed over as if dead-lettered: never applied, the consumer moving on. Returns the records."""
        svc = service(name)
        start = self._positions[(svc.group, topic)]
        batch = self.log.get(topic, [])[start : start + count]
        self._positions[(svc.group, topic)] = start + len(batch)
        if batch and not dead_letter:
            for letter in Dispatcher(svc).handle(batch).dead:
                self.dead.append(letter)
                self.inject(topic + ".dlt", letter.record.value, letter.record.headers, letter.record.key)
        return batch

    def redeliver_all(self) -> int:
        """Replay every topic from offset 0 to every service (what a consumer-group reset does)."""
        self._positions.clear()
        return self.deliver()

    def events(self, event_type: str | None = None) -> list[Envelope]:
        dispatcher = Dispatcher(self.services[0])
        found = []
        for records in self.log.values():
            for record in records:
                item = dispatcher.decode(record)
                if isinstance(item, Envelope) and (event_type is None or item.type == event_type):
                    found.append(item)
        return found
