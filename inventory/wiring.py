"""The inventory service as the event bus runs it (`run_consumer inventory`): its database, outbox, inbox and
handlers."""

from eventbus.service import Service

from .handlers import HANDLERS
from .models import InboxMessage, OutboxMessage, RelayLease
from .services import announce_pending_stock

SERVICE = Service(
    name="inventory",
    database="inventory",
    outbox=OutboxMessage,
    inbox=InboxMessage,
    lease=RelayLease,
    handlers=HANDLERS,
    on_idle=announce_pending_stock,
)
