"""Storefront pages. Thin: forms check input, services write, selectors read, templates show."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import ratelimit, selectors, services
from .access import may_view, remember_order, remembered_orders
from .cart import Cart
from .forms import AddToCartForm, CartLineForm, CheckoutForm
from .stages import CANCELLABLE

# --------------------------------------------------------------------------- catalogue


@require_GET
def product_list(request):
    return render(request, "shop/product_list.html", {"products": selectors.catalogue()})


@require_http_methods(["GET", "POST"])
def product_detail(request, sku: str):
    product = selectors.product(sku)
    if product is None:
        raise Http404("No such product")
    form = AddToCartForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if product.available <= 0:
            form.add_error("quantity", "Sorry, this product is sold out.")
        else:
            in_cart = Cart(request.session).add(product.sku, form.cleaned_data["quantity"])
            messages.success(request, f"{product.name} added to your cart (now {in_cart}).")
            return redirect("shop:cart")
    return render(request, "shop/product_detail.html", {"product": product, "form": form})


# --------------------------------------------------------------------------- cart


@require_GET
def cart_detail(request):
    lines = Cart(request.session).lines()
    return render(request, "shop/cart.html", {"lines": lines, "total": Cart.total(lines)})


@require_POST
def cart_update(request, sku: str):
    form = CartLineForm(request.POST)
    if form.is_valid():
        Cart(request.session).set(sku, form.cleaned_data["quantity"])
    else:
        messages.error(request, f"Quantity: {' '.join(form.errors['quantity'])}")
    return redirect("shop:cart")


@require_POST
def cart_remove(request, sku: str):
    Cart(request.session).remove(sku)
    return redirect("shop:cart")


# --------------------------------------------------------------------------- checkout


@require_http_methods(["GET", "POST"])
def checkout(request):
    key = _checkout_key(request)
    if key and (earlier := selectors.earlier_request(key)) is not None:  # a double submit or a reload
        return _show_placed(request, services.PlacedOrder(earlier.order, services.token_for_key(key, earlier.order_id)))
    cart = Cart(request.session)
    lines = cart.lines()
    if not lines:
        messages.info(request, "Your cart is empty: add a product first.")
        return redirect("shop:product-list")
    form = CheckoutForm(request.POST or None, initial={"nonce": secrets.token_urlsafe(24)})
    if request.method == "POST" and form.is_valid():
        verdict = ratelimit.check_order_rate(request)
        if not verdict.allowed:
            return _too_many_orders(request, verdict)
        details = {k: v for k, v in form.cleaned_data.items() if k != "nonce"}
        try:
            placed = services.place_order(
                **details, lines=cart.order_lines(), session_key=_session_key(request), idempotency_key=key
            )
        except services.OrderError as exc:
            for field, errors in exc.errors.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        except services.IdempotencyConflict:  # this page's twin submit already placed another cart
            form.add_error(None, "This checkout was already submitted with another cart; please check out again.")
        else:
            cart.clear()
            return _show_placed(request, placed)
    return render(request, "shop/checkout.html", {"form": form, "lines": lines, "total": Cart.total(lines)})


def _checkout_key(request) -> str:
    """The checkout's idempotency key: its one-time nonce within this browser session ("" on a GET)."""
    nonce = request.POST.get("nonce", "") if request.method == "POST" else ""
    if not CheckoutForm.base_fields["nonce"].regex.match(nonce):
        return ""
    return f"checkout:{_session_key(request)}:{nonce}"


def _session_key(request) -> str:
    if not request.session.session_key:
        request.session.save()
    return request.session.session_key


def _show_placed(request, placed: services.PlacedOrder) -> HttpResponse:
    remember_order(request.session, placed.order.id, placed.token)
    if not placed.replayed:
        messages.success(request, "Thank you! Your order is placed; this page follows it live.")
    # The private link for another device travels in the fragment, which browsers never send to a server:
    # the page's script shows it and takes it out of the address bar.
    url = reverse("shop:order-detail", kwargs={"order_id": placed.order.id})
    return redirect(f"{url}#{urlencode({'token': placed.token})}")


def _too_many_orders(request, verdict: ratelimit.Verdict) -> HttpResponse:
    response = render(request, "shop/rate_limited.html", {"retry_after": verdict.retry_after}, status=429)
    response["Retry-After"] = str(verdict.retry_after)
    return response


# --------------------------------------------------------------------------- orders


@require_GET
@never_cache
def order_list(request):
    orders = selectors.orders_by_ids(remembered_orders(request.session))
    return render(request, "shop/order_list.html", {"orders": orders})


@require_GET
@never_cache  # the page holds a customer's address
def order_detail(request, order_id):
    token = request.GET.get("token")
    order = _visible_order(request, order_id, token)
    if token:
        # A private link: swap its token for this session, then drop it from the address bar, the history
        # and any Referer the page would send.
        remember_order(request.session, order.id, token)
        return redirect("shop:order-detail", order_id=order.id)
    cancel = selectors.cancel_of(order)
    context = {
        "order": order,
        "cancel": cancel,
        "cancellable": order.status in CANCELLABLE and cancel is None,
        "cancellable_statuses": " ".join(sorted(CANCELLABLE)),
    }
    return render(request, "shop/order_detail.html", context)


@require_POST
def order_cancel(request, order_id):
    token = request.POST.get("token") or None
    order = _visible_order(request, order_id, token)
    try:
        services.request_cancel(
            order_id=order.id, reason="cancelled by staff" if request.user.is_staff else "customer request"
        )
    except services.NotCancellable as exc:
        messages.error(request, f"This order can no longer be cancelled: {exc}.")
    else:
        messages.info(
            request,
            "Cancel requested. This page shows shipping's answer: cancelled if the parcel has not left yet.",
        )
    url = reverse("shop:order-detail", kwargs={"order_id": order.id})
    return redirect(f"{url}?{urlencode({'token': token})}" if token else url)


def _visible_order(request, order_id, token: str | None):
    """The order, or 404 for anyone who may not see it (never 403: that would confirm it exists)."""
    order = selectors.order_with_details(order_id)
    if order is None or not may_view(order, session=request.session, user=request.user, token=token):
        raise Http404("No such order")
    return order
