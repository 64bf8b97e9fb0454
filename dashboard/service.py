from eventbus.service import Service

from .handlers import HANDLERS
from .models import InboxMessage, OutboxMessage, RelayLease

SERVICE = Service(
    name="dashboard",
    database="dashboard",
    outbox=OutboxMessage,
    inbox=InboxMessage,
    lease=RelayLease,
    handlers=HANDLERS,
)
