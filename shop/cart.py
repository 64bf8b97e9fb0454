"""The cart lives in the session: {sku: quantity}. Prices and names come from the catalogue when shown,
so a cart never holds a stale price."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from . import selectors
from .limits import MAX_QUANTITY
from .models import Product

SESSION_CART = "shop.cart"


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def subtotal(self) -> Decimal:
        return self.product.price * self.quantity


class Cart:
    def __init__(self, session):
        self.session = session
        stored = session.get(SESSION_CART)
        self.items: dict[str, int] = dict(stored) if isinstance(stored, dict) else {}

    def add(self, sku: str, quantity: int) -> int:
        """Add to a line, capped at MAX_QUANTITY; return the line's new quantity."""
        self.items[sku] = min(MAX_QUANTITY, self.items.get(sku, 0) + quantity)
        self._save()
        return self.items[sku]

    def set(self, sku: str, quantity: int) -> None:
        if quantity <= 0:
            self.remove(sku)
            return
        self.items[sku] = min(MAX_QUANTITY, quantity)
        self._save()

    def remove(self, sku: str) -> None:
        if self.items.pop(sku, None) is not None:
            self._save()

    def clear(self) -> None:
        self.items = {}
        self._save()

    def lines(self) -> list[CartLine]:
        """The lines whose product is still on sale, in catalogue order."""
        products = selectors.products_by_sku(self.items)
        lines = [CartLine(products[sku], q) for sku, q in self.items.items() if sku in products]
        return sorted(lines, key=lambda line: line.product.name)

    def order_lines(self) -> list[dict]:
        return [{"sku": line.product.sku, "quantity": line.quantity} for line in self.lines()]

    @staticmethod
    def total(lines: list[CartLine]) -> Decimal:
        return sum((line.subtotal for line in lines), Decimal("0"))

    def __len__(self) -> int:
        return sum(self.items.values())

    def _save(self) -> None:
        self.session[SESSION_CART] = self.items
        self.session.modified = True
