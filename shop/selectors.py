"""The shop's reads."""

from .models import Order, Product

DB = "shop"


def catalogue() -> list[Product]:
    return list(Product.objects.using(DB).filter(active=True).order_by("name"))


def product(sku: str) -> Product | None:
    return Product.objects.using(DB).filter(sku=sku, active=True).first()


def order_with_details(order_id) -> Order | None:
    return Order.objects.using(DB).filter(id=order_id).prefetch_related("lines", "history").first()


def order_as_dict(order: Order) -> dict:
    return {
        "id": str(order.id),
        "status": order.status,
        "lines": [
            {"sku": ln.sku, "name": ln.name, "quantity": ln.quantity, "unit_price": f"{ln.unit_price:.2f}"}
            for ln in order.lines.all()
        ],
        "total": f"{order.total:.2f}",
        "history": [{"status": h.status, "at": h.at.isoformat()} for h in order.history.all()],
    }
