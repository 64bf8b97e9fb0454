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
