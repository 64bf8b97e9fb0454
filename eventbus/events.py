"""Domain events as small dataclasses. An app's `events.py` declares what it publishes:

@dataclass(frozen=True)
class OrderPlaced(Event):
    TYPE: ClassVar[str] = "conveyor.shop.order.placed.v1"
    SOURCE: ClassVar[str] = "shop"
    SUBJECT: ClassVar[str] = "order_id"
    order_id: str
    ...
"""

from dataclasses import asdict, dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    TYPE: ClassVar[str]
    SOURCE: ClassVar[str]
    SUBJECT: ClassVar[str]

    @property
    def subject(self) -> str:
        return str(getattr(self, self.SUBJECT))

    def to_data(self) -> dict[str, Any]:
        return asdict(self)
