from eventbus.service import Service

from .handlers import BATCH_HANDLERS, HANDLERS
from .models import InboxMessage, OutboxMessage, RelayLease

SERVICE = Service(
    name="shipping",
    database="shipping",
    outbox=OutboxMessage,
    inbox=InboxMessage,
    lease=RelayLease,
    handlers=HANDLERS,
    batch_handlers=BATCH_HANDLERS,
)
