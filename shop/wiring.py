"""The shop service as the event bus runs it (`run_consumer shop`): its database, outbox, inbox and
handlers."""

from eventbus.service import Service

from .handlers import HANDLERS
from .models import InboxMessage, OutboxMessage, RelayLease

SERVICE = Service(
    name="shop",
    database="shop",
    outbox=OutboxMessage,
    inbox=InboxMessage,
    lease=RelayLease,
    handlers=HANDLERS,
)
