"""The shipping service as the event bus runs it (`run_consumer shipping`): its database, outbox, inbox and
handlers."""

from eventbus.service import Service

from .handlers import HANDLERS
from .models import InboxMessage, OutboxMessage, RelayLease

SERVICE = Service(
    name="shipping",
    database="shipping",
    outbox=OutboxMessage,
    inbox=InboxMessage,
    lease=RelayLease,
    handlers=HANDLERS,
)
