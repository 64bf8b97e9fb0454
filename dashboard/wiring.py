"""The dashboard service as the event bus runs it (`run_consumer dashboard`): its database, outbox, inbox and
handlers."""

from eventbus.service import Service

from .handlers import HANDLERS, record_poison
from .live_feed import feed
from .models import OutboxMessage, RelayLease

SERVICE = Service(
    name="dashboard",
    database="dashboard",
    outbox=OutboxMessage,
    # No id-based inbox: dead letters and replays carry their original ce_id, and the read model is
    # idempotent by (topic, partition, offset) in EventLog instead.
    inbox=None,
    lease=RelayLease,
    handlers=HANDLERS,
    on_idle=feed.tick,
    on_poison=record_poison,
)
