from eventbus.service import Service

from .handlers import HANDLERS, record_poison
from .live import feed
from .models import InboxMessage, OutboxMessage, RelayLease

SERVICE = Service(
    name="dashboard",
    database="dashboard",
    outbox=OutboxMessage,
    inbox=InboxMessage,
    lease=RelayLease,
    handlers=HANDLERS,
    on_idle=feed.tick,
    on_batch=feed.tick,
    on_poison=record_poison,
)
