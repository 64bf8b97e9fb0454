"""Who may see an order: the browser session that placed it, the holder of its token, or staff.

Shared by the order page, the JSON API and the order websocket, so the three never disagree.
"""

from __future__ import annotations

from .models import Order
from .services import hash_token, token_matches

SESSION_ORDERS = "shop.orders"  # {order id: sha256 of its token} of the orders this browser may see
MAX_REMEMBERED = 50


def remember_order(session, order_id, token: str) -> None:
    """Let this session see the order. Only the token's hash is kept: session data is never a way in."""
    orders = dict(session.get(SESSION_ORDERS) or {})
    orders[str(order_id)] = hash_token(token)
    # Bound the session's size: keep the newest orders (dicts keep insertion order).
    session[SESSION_ORDERS] = dict(list(orders.items())[-MAX_REMEMBERED:])


def remembered_orders(session) -> dict[str, str]:
    if session is None:
        return {}
    orders = session.get(SESSION_ORDERS)
    return orders if isinstance(orders, dict) else {}


def is_staff(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def owns(order: Order, session) -> bool:
    """The session placed the order: remembered by id, or the session key recorded on the order."""
    if str(order.id) in remembered_orders(session):
        return True
    key = getattr(session, "session_key", None)
    return bool(key and order.session_key and key == order.session_key)


def may_view(order: Order, *, session=None, user=None, token: str | None = None) -> bool:
    return owns(order, session) or token_matches(order, token) or is_staff(user)
