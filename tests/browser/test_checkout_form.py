"""The checkout form explains bad input next to each field, keeps what was typed, and places nothing."""

import re

import pytest
from playwright.sync_api import expect

from shop.models import Order
from tests.browser.helpers import ORDER_URL, add_to_cart, fill_checkout, go_to_checkout, product, start

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]


def test_checkout_shows_field_errors_for_bad_input(stack, browser):
    sku = product("FORM-CAP", 5, "Form Cap", "18.00")
    base = start(stack, consumers=(), celery=False)
    page = browser.page(base)
    add_to_cart(page, sku, 1)
    go_to_checkout(page)

    fill_checkout(page, email="not-an-email", name="", address="1 Validation Road")
    expect(page).to_have_url(re.compile(r"/checkout/\??$"))  # still on the form (posted to itself)
    form = page.locator("form:has([name=email])")
    email_errors = form.locator(".field:has([name=email]) .errorlist")
    name_errors = form.locator(".field:has([name=name]) .errorlist")
    expect(email_errors).to_contain_text("valid email")
    expect(name_errors).to_contain_text("required")
    expect(form.locator(".field:has([name=address]) .errorlist")).to_have_count(0)
    expect(form.locator("[name=email]")).to_have_value("not-an-email")  # what was typed is kept
    expect(form.locator("[name=address]")).to_have_value("1 Validation Road")
    expect(form.locator("[name=name]")).to_have_attribute("aria-invalid", "true")
    assert not Order.objects.using("shop").exists()

    fill_checkout(page, email="linus@example.com", name="Linus", address="1 Validation Road")
    expect(page).to_have_url(ORDER_URL)
    assert Order.objects.using("shop").count() == 1
    # The private link is shown once, from the fragment, which then leaves the address bar; opened in a
    # fresh browser it swaps its token for a session and lands on the address without it.
    link = page.locator("[data-share-link]")
    expect(link).to_have_value(re.compile(r"^http://.+/orders/[0-9a-f-]{36}/\?token=[\w-]+$"))
    assert "token" not in page.url
    other = page.context.browser.new_context(base_url=page.url.split("/orders/")[0])
    try:
        stranger = other.new_page()
        response = stranger.goto(link.input_value())
        assert response.status == 200 and "token" not in stranger.url
        expect(stranger.locator("[data-order-status]")).to_have_count(1)
    finally:
        other.close()


def test_a_double_click_on_place_order_places_one_order(stack, browser):
    sku = product("DOUBLE-CAP", 5, "Double Cap", "18.00")
    base = start(stack, consumers=(), celery=False)
    page = browser.page(base)
    add_to_cart(page, sku, 1)
    go_to_checkout(page)
    fill_checkout(page, email="ada@example.com", name="Ada", address="1 Double Road", submit=False)
    page.locator("form:has([name=email]) [type=submit]").dblclick()
    expect(page).to_have_url(ORDER_URL)
    order_id = re.search(r"/orders/([0-9a-f-]{36})/", page.url).group(1)
    page.reload()  # and a reload of the order page after the POST changes nothing either
    assert [str(o) for o in Order.objects.using("shop").values_list("id", flat=True)] == [order_id]


def test_two_submits_of_one_checkout_that_reach_the_server_together_place_one_order(stack, browser):
    """What a double click on a slow connection sends: the same form twice, both in flight at once."""
    sku = product("TWICE-CAP", 5, "Twice Cap", "18.00")
    base = start(stack, consumers=(), celery=False)
    page = browser.page(base)
    add_to_cart(page, sku, 1)
    go_to_checkout(page)
    fill_checkout(page, email="ada@example.com", name="Ada", address="1 Twice Road", submit=False)
    landed = page.evaluate(
        """async () => {
            const form = document.querySelector("form.checkout-form");
            const send = () => fetch(form.action || location.href, { method: "POST", body: new FormData(form) });
            const answers = await Promise.all([send(), send()]);
            return answers.map((answer) => new URL(answer.url).pathname);
        }"""
    )
    assert landed[0] == landed[1] and re.fullmatch(r"/orders/[0-9a-f-]{36}/", landed[0]), landed
    assert Order.objects.using("shop").count() == 1
