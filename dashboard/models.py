"""The dashboard's read model, in its own database: every record seen on any topic, one card per order,
counters per event type, dead letters and the latest consumer lag per group."""

from django.db import models

from eventbus.models import OutboxMessageBase, RelayLeaseBase

MAIN_PATH = ("placed", "reserved", "packed", "dispatched", "delivered")
EXITS = ("rejected", "cancelled")
STAGES = MAIN_PATH + EXITS
TERMINAL = frozenset({"delivered", *EXITS})


class EventLog(models.Model):
    """Every record seen on any topic (dead letters and undecodable records included), in arrival order.

    `seq` is the dashboard's sequence number: frames pushed to browsers say which seqs they cover, and a
    browser that reconnects asks for everything after the last seq it saw.
    """

    class Kind(models.TextChoices):
        EVENT = "event"
        DEAD_LETTER = "dead-letter"  # a record on a `<topic>.dlt` topic
        POISON = "poison"  # a record nobody can decode

    seq = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.EVENT)
    event_id = models.CharField(max_length=64, blank=True, db_index=True)
    event_type = models.CharField(max_length=200, blank=True, db_index=True)
    source = models.CharField(max_length=200, blank=True)
    subject = models.CharField(max_length=200, blank=True, db_index=True)
    order_id = models.CharField(max_length=64, blank=True, db_index=True)
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)
    causation_id = models.CharField(max_length=64, blank=True)
    time = models.DateTimeField(null=True)
    topic = models.CharField(max_length=200)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    headers = models.JSONField(default=dict)
    payload = models.TextField(blank=True)  # pretty-printed JSON, or the raw text of an undecodable record
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["topic", "partition", "offset"], name="dashboard_event_once")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event_type or self.kind} {self.subject}"


class OrderCard(models.Model):
    """One order on the stage board: where it is now, derived from the events seen (in any order)."""

    order_id = models.CharField(max_length=64, primary_key=True)
    stage = models.CharField(max_length=20, choices=[(s, s) for s in STAGES], db_index=True)
    stage_since = models.DateTimeField()
    placed_at = models.DateTimeField(null=True, blank=True)
    total = models.CharField(max_length=32, blank=True)
    items = models.IntegerField(default=0)
    events = models.IntegerField(default=0)
    last_seq = models.BigIntegerField(db_index=True)  # the newest EventLog seq that touched this card
    facts = models.IntegerField(default=0)  # which of the saga's decisions were seen (stages.FACT_OF_TYPE bits)
    violation = models.CharField(max_length=200, blank=True, default="")  # how its events contradict the saga
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # the newest cards of a stage (a new browser's snapshot), whatever the number of cards
            models.Index(fields=["stage", "last_seq"], name="dashboard_card_stage_newest"),
            # the few cards in violation, without a walk through all the others
            models.Index(fields=["last_seq"], condition=~models.Q(violation=""), name="dashboard_card_violations"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} ({self.stage})"


class StageCount(models.Model):
    """How many orders stand at each stage, kept as the cards move: counting the cards instead (a GROUP BY
    over every card, at each live frame) took 13 ms at 100 000 orders and 143 ms at a million."""

    stage = models.CharField(max_length=20, primary_key=True, choices=[(s, s) for s in STAGES])
    orders = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.stage}: {self.orders}"


class TypeCounter(models.Model):
    event_type = models.CharField(max_length=200, primary_key=True)
    count = models.BigIntegerField(default=0)
    dead_letters = models.BigIntegerField(default=0)
    last_seen = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"{self.event_type}: {self.count}"


class DeadLetter(models.Model):
    """A record on a dead-letter topic, with what staff did about it."""

    class Status(models.TextChoices):
        NEW = "new"
        REPLAYED = "replayed"
        DISCARDED = "discarded"

    seq = models.BigIntegerField(unique=True)  # the EventLog row of the record on the .dlt topic
    dlt_topic = models.CharField(max_length=200)
    reason = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    original_topic = models.CharField(max_length=200, blank=True)
    original_partition = models.IntegerField(null=True)
    original_offset = models.BigIntegerField(null=True)
    group = models.CharField(max_length=100, blank=True)
    dead_at = models.DateTimeField(null=True)
    event_type = models.CharField(max_length=200, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    key = models.BinaryField(null=True)
    value = models.BinaryField(null=True)
    headers = models.JSONField(default=dict)  # the original headers (dlt_* removed), as text
    payload = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW, db_index=True)
    status_by = models.CharField(max_length=150, blank=True)
    status_at = models.DateTimeField(null=True, blank=True)
    replays = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"{self.original_topic}[{self.original_partition}]@{self.original_offset} ({self.reason})"


class GroupLag(models.Model):
    """The latest lag sample of a consumer group (written by the dashboard consumer every ~2 s)."""

    group = models.CharField(max_length=100, primary_key=True)
    lag = models.BigIntegerField(default=0)
    seconds_behind = models.FloatField(default=0)
    partitions = models.JSONField(default=list)  # [[topic, partition, committed, end], …]
    history = models.JSONField(default=list)  # [[unix time, lag, seconds behind], …] newest last
    sampled_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.group}: {self.lag}"


class OutboxMessage(OutboxMessageBase):
    """Only replayed dead letters go out through the dashboard's outbox."""


class RelayLease(RelayLeaseBase):
    pass


class SavedFilter(models.Model):
    """A member of staff's named view of a topic in the event viewer: the page's query string, as shared."""

    username = models.CharField(max_length=150, db_index=True)  # users live in the default database
    topic = models.CharField(max_length=249)
    name = models.CharField(max_length=100)
    query = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["username", "topic", "name"], name="dashboard_saved_filter_once")
        ]

    def __str__(self) -> str:
        return f"{self.username}: {self.name} ({self.topic})"


class OperatorLog(models.Model):
    """What staff did to the running system from the dashboard (offset resets, dead-letter replays): who,
    when, what. Rows are only ever added."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    username = models.CharField(max_length=150)
    action = models.CharField(max_length=50)
    target = models.CharField(max_length=300)
    detail = models.JSONField(default=dict)

    class Meta:
        permissions = [
            ("reset_offsets", "Can reset a consumer group's committed offsets"),
            ("use_chaos", "Can turn chaos switches on and off"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.target}"
