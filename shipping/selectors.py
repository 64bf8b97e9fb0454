from .models import Shipment


def shipment_for(order_id: str) -> Shipment | None:
    return Shipment.objects.using("shipping").filter(order_id=order_id).first()
