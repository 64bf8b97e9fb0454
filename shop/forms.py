"""Storefront forms: the browser's input is checked here, with an error next to the field it concerns."""

from django import forms

from .limits import ADDRESS_MAX, EMAIL_MAX, MAX_QUANTITY, NAME_MAX


class ErrorsDescribeFields:
    """Point each invalid input at its error list (aria-describedby), so screen readers read the error
    with the field; templates/shop/_field.html renders the list with that id."""

    def add_error(self, field, error):
        super().add_error(field, error)  # also called by validation itself, for every field error
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs["aria-describedby"] = f"{self[name].auto_id}_error"


class QuantityInput(forms.NumberInput):
    def __init__(self):
        super().__init__(attrs={"inputmode": "numeric", "class": "quantity-input"})


class AddToCartForm(ErrorsDescribeFields, forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY, initial=1, widget=QuantityInput())


class CartLineForm(forms.Form):
    """Change a cart line; 0 removes it."""

    quantity = forms.IntegerField(min_value=0, max_value=MAX_QUANTITY, widget=QuantityInput())


class CheckoutForm(ErrorsDescribeFields, forms.Form):
    # A one-time value per checkout page: a double submit or a reload of the POST carries the same one, and
    # places one order (it becomes the order's idempotency key, with the session's key).
    nonce = forms.RegexField(regex=r"^[A-Za-z0-9_-]{16,64}$", required=False, widget=forms.HiddenInput)
    email = forms.EmailField(max_length=EMAIL_MAX, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    name = forms.CharField(max_length=NAME_MAX, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    address = forms.CharField(
        max_length=ADDRESS_MAX, widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "street-address"})
    )
