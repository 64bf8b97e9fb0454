from .models import Reservation, StockItem


def stock_levels() -> list[StockItem]:
    return list(StockItem.objects.using("inventory").order_by("sku"))


def reservation_for(order_id: str) -> Reservation | None:
    return Reservation.objects.using("inventory").filter(order_id=order_id).prefetch_related("lines").first()
