from eventbus.service import Service

from .handlers import HANDLERS
from .models import InboxMessage, OutboxMessage, RelayLease
from .services import announce_batched_stock, announce_pending_stock, begin_stock_batch

SERVICE = Service(
    name="inventory",
    database="inventory",
    outbox=OutboxMessage,
    inbox=InboxMessage,
    lease=RelayLease,
    handlers=HANDLERS,
    batch_started=begin_stock_batch,
    before_commit=announce_batched_stock,
    on_idle=announce_pending_stock,
)
