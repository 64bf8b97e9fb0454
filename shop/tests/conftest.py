"""Shop test fixtures: a small catalogue and placed orders in the shop's own database."""

from decimal import Decimal

import pytest

from shop import services
from shop.models import Product

CATALOGUE = [
    ("MUG-001", "Kafka Mug", "12.50", 120),
    ("LMP-011", "Consumer Group Lamp", "89.00", 3),
    ("HOD-008", "KRaft Hoodie", "49.00", 0),
]


@pytest.fixture
def products(db):
    return {
        sku: Product.objects.using("shop").create(
            sku=sku, name=name, price=Decimal(price), available=available, image=f"shop/img/{sku.lower()}.svg"
        )
        for sku, name, price, available in CATALOGUE
    }


@pytest.fixture
def place(products):
    """Place an order through the service (the API's path); returns PlacedOrder."""

    def place(session_key: str = "", **lines):
        return services.place_order(
            email="ada@example.com",
            name="Ada Lovelace",
            address="12 Analytical Row, London",
            lines=[{"sku": sku.replace("_", "-"), "quantity": q} for sku, q in (lines or {"MUG_001": 2}).items()],
            session_key=session_key,
        )

    return place


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    client.force_login(user)
    return client
