"""The storefront through Django's test client: catalogue, cart, checkout."""

import re

import pytest
from django.contrib.staticfiles import finders

from demo.catalog import PRODUCTS
from shop.access import SESSION_ORDERS
from shop.models import Order, OutboxMessage

pytestmark = pytest.mark.django_db(databases=["default", "shop"])

CHECKOUT = {"email": "ada@example.com", "name": "Ada Lovelace", "address": "12 Analytical Row"}


def test_every_demo_product_has_an_image():
    for sku, *_ in PRODUCTS:
        path = finders.find(f"shop/img/{sku.lower()}.svg")
        assert path, sku
        with open(path) as svg:
            assert svg.read().startswith("<svg")


def test_home_lists_products_with_links_prices_and_availability(client, products):
    page = client.get("/").content.decode()
    for sku in products:
        assert f'href="/products/{sku}/"' in page
    assert "12.50" in page
    assert "In stock: 120" in page
    assert "Only 3 left" in page
    assert "Sold out" in page
    assert 'data-availability-sku="MUG-001"' in page


def test_product_page_has_a_quantity_form(client, products):
    page = client.get("/products/MUG-001/").content.decode()
    assert 'name="quantity"' in page
    assert 'type="submit"' in page
    assert "csrfmiddlewaretoken" in page


def test_unknown_or_inactive_product_is_404(client, products):
    products["MUG-001"].active = False
    products["MUG-001"].save(using="shop")
    assert client.get("/products/MUG-001/").status_code == 404
    assert client.get("/products/NOPE/").status_code == 404


def test_adding_to_cart_and_the_cart_page(client, products):
    response = client.post("/products/MUG-001/", {"quantity": "2"})
    assert response.status_code == 302 and response["Location"] == "/cart/"
    client.post("/products/MUG-001/", {"quantity": "1"})
    page = client.get("/cart/").content.decode()
    assert "Kafka Mug" in page
    assert 'value="3"' in page
    assert "37.50" in page  # 3 × 12.50
    assert 'action="/checkout/"' in page


@pytest.mark.parametrize("quantity", ["0", "101", "x", ""])
def test_bad_quantity_shows_a_field_error_and_adds_nothing(client, products, quantity):
    response = client.post("/products/MUG-001/", {"quantity": quantity})
    assert response.status_code == 200
    assert response.context["form"].errors["quantity"]
    assert 'class="errorlist"' in response.content.decode()
    assert "Kafka Mug" not in client.get("/cart/").content.decode()


def test_sold_out_product_cannot_be_added(client, products):
    response = client.post("/products/HOD-008/", {"quantity": "1"})
    assert response.status_code == 200
    assert "sold out" in response.context["form"].errors["quantity"][0]


def test_csrf_is_enforced_on_the_product_form(products):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/products/MUG-001/", {"quantity": "1"})
    assert response.status_code == 403


def test_cart_update_and_remove(client, products):
    client.post("/products/MUG-001/", {"quantity": "2"})
    client.post("/products/LMP-011/", {"quantity": "1"})
    client.post("/cart/MUG-001/", {"quantity": "5"})
    assert 'value="5"' in client.get("/cart/").content.decode()
    client.post("/cart/MUG-001/", {"quantity": "0"})
    client.post("/cart/LMP-011/remove/")
    assert "Your cart is empty" in client.get("/cart/").content.decode()


def test_empty_cart_checkout_redirects_home_with_a_message(client, products):
    response = client.get("/checkout/", follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert "cart is empty" in response.content.decode()


def test_checkout_end_to_end_lands_on_the_order_page(client, products):
    client.post("/products/MUG-001/", {"quantity": "2"})
    client.post("/products/LMP-011/", {"quantity": "1"})
    assert 'name="email"' in client.get("/checkout/").content.decode()

    response = client.post("/checkout/", CHECKOUT)

    assert response.status_code == 302
    match = re.fullmatch(r"/orders/([0-9a-f-]{36})/#token=[\w-]+", response["Location"])  # link in the fragment
    assert match, response["Location"]
    order = Order.objects.using("shop").get(id=match.group(1))
    assert order.status == "placed" and str(order.total) == "114.00"
    assert {(line.sku, line.quantity) for line in order.lines.all()} == {("MUG-001", 2), ("LMP-011", 1)}
    outbox = list(OutboxMessage.objects.using("shop").all())
    assert [(m.event_type, m.key) for m in outbox] == [("conveyor.shop.order.placed.v1", str(order.id))]
    assert str(order.id) in client.session[SESSION_ORDERS]
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert 'data-order-status="placed"' in page.content.decode()
    assert "Your cart is empty" in client.get("/cart/").content.decode()
    assert str(order.id)[:8] in client.get("/orders/").content.decode()


@pytest.mark.parametrize(
    ("field", "value"), [("email", "nope"), ("name", ""), ("address", ""), ("address", "a" * 1001)]
)
def test_checkout_errors_are_shown_next_to_fields_and_nothing_is_placed(client, products, field, value):
    client.post("/products/MUG-001/", {"quantity": "1"})
    response = client.post("/checkout/", {**CHECKOUT, field: value})
    assert response.status_code == 200
    assert list(response.context["form"].errors) == [field]
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html
    assert f'aria-describedby="id_{field}_error"' in html  # the input points at its error
    assert not Order.objects.using("shop").exists()
    assert not OutboxMessage.objects.using("shop").exists()


def test_checkout_service_errors_become_form_errors(client, products):
    client.post("/products/MUG-001/", {"quantity": "1"})
    # The product is withdrawn between cart and checkout: the cart drops it, so the cart is empty.
    products["MUG-001"].active = False
    products["MUG-001"].save(using="shop")
    assert client.post("/checkout/", CHECKOUT)["Location"] == "/"


def test_checkout_order_error_is_shown_on_the_form(client, products, monkeypatch):
    from shop import services

    client.post("/products/MUG-001/", {"quantity": "1"})

    def refuse(**kwargs):
        raise services.OrderError({"email": ["We cannot ship to this address."], "lines": ["Out of range."]})

    monkeypatch.setattr(services, "place_order", refuse)
    response = client.post("/checkout/", CHECKOUT)
    form = response.context["form"]
    assert form.errors["email"] == ["We cannot ship to this address."]
    assert form.non_field_errors() == ["Out of range."]


def test_a_double_submit_or_a_reload_of_the_checkout_places_one_order(client, products):
    client.post("/products/MUG-001/", {"quantity": "2"})
    page = client.get("/checkout/").content.decode()
    nonce = re.search(r'name="nonce" value="([\w-]+)"', page).group(1)
    first = client.post("/checkout/", {**CHECKOUT, "nonce": nonce})
    again = client.post("/checkout/", {**CHECKOUT, "nonce": nonce})  # the cart is empty by now
    assert first.status_code == again.status_code == 302
    assert again["Location"] == first["Location"]  # the same order page, with the same private link
    assert Order.objects.using("shop").count() == 1
    assert OutboxMessage.objects.using("shop").count() == 1


def test_a_new_checkout_page_places_a_new_order(client, products):
    for _ in range(2):
        client.post("/products/MUG-001/", {"quantity": "1"})
        nonce = re.search(r'name="nonce" value="([\w-]+)"', client.get("/checkout/").content.decode()).group(1)
        client.post("/checkout/", {**CHECKOUT, "nonce": nonce})
    assert Order.objects.using("shop").count() == 2


def test_a_nonce_from_another_session_is_not_shared(products):
    from django.test import Client

    mine, theirs = Client(), Client()
    for client in (mine, theirs):
        client.post("/products/MUG-001/", {"quantity": "1"})
        client.post("/checkout/", {**CHECKOUT, "nonce": "the-same-nonce-in-both-pages"})
    assert Order.objects.using("shop").count() == 2  # the key is the nonce within one session
