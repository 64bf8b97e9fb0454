"""How availability reads on the storefront; static/shop/js/stock-live.js writes the same words."""

from django import template

register = template.Library()
LOW_STOCK = 5  # at or below this, "Only N left"


@register.filter
def availability(available: int) -> str:
    if available <= 0:
        return "Sold out"
    if available <= LOW_STOCK:
        return f"Only {available} left"
    return f"In stock: {available}"


@register.filter
def availability_level(available: int) -> str:
    """A CSS hook: out, low or ok."""
    if available <= 0:
        return "out"
    return "low" if available <= LOW_STOCK else "ok"


@register.simple_tag
def low_stock_threshold() -> int:
    return LOW_STOCK
