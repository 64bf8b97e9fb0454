import pytest

from shop.forms import AddToCartForm, CartLineForm, CheckoutForm

GOOD_CHECKOUT = {"email": "ada@example.com", "name": "Ada", "address": "1 Road"}


@pytest.mark.parametrize("quantity", ["1", "100"])
def test_add_to_cart_accepts_1_to_100(quantity):
    assert AddToCartForm({"quantity": quantity}).is_valid()


@pytest.mark.parametrize("quantity", ["0", "-1", "101", str(10**20), "1.5", "abc", "", "1e3"])
def test_add_to_cart_rejects_bad_quantities_on_the_field(quantity):
    form = AddToCartForm({"quantity": quantity})
    assert not form.is_valid()
    assert list(form.errors) == ["quantity"]


def test_cart_line_allows_zero_to_remove():
    assert CartLineForm({"quantity": "0"}).is_valid()
    assert not CartLineForm({"quantity": "101"}).is_valid()


def test_checkout_accepts_good_input():
    assert CheckoutForm(GOOD_CHECKOUT).is_valid()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("email", ""),
        ("email", "a@" + "b" * 260 + ".com"),
        ("name", ""),
        ("name", "   "),
        ("name", "n" * 201),
        ("address", ""),
        ("address", "a" * 1001),
    ],
)
def test_checkout_rejects_bad_fields_with_an_error_on_that_field(field, value):
    form = CheckoutForm({**GOOD_CHECKOUT, field: value})
    assert not form.is_valid()
    assert list(form.errors) == [field]
