"""Storefront forms: the browser's input is checked here, with an error next to the field it concerns."""

from django import forms

from .services import MAX_QUANTITY


class QuantityInput(forms.NumberInput):
    def __init__(self):
        super().__init__(attrs={"inputmode": "numeric", "class": "quantity-input"})


class AddToCartForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY, initial=1, widget=QuantityInput())


class CartLineForm(forms.Form):
    """Change a cart line; 0 removes it."""

    quantity = forms.IntegerField(min_value=0, max_value=MAX_QUANTITY, widget=QuantityInput())


class CheckoutForm(forms.Form):
    # Limits match shop.services.place_order, which checks them again for every other caller.
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    address = forms.CharField(
        max_length=1000, widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "street-address"})
    )
