"""The README's pictures, taken from a real run: the live dashboard with orders in several stages, and the
storefront with the demo catalogue. Regenerated on every run (docs/screenshots/)."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import demo_catalog, log_in, open_dashboard, start
from tests.support import ROOT, http_json

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]
SHOTS = ROOT / "docs" / "screenshots"
BUYERS = [
    ("ada@example.com", "Ada Lovelace", "12 Analytical Row, London"),
    ("grace@example.com", "Grace Hopper", "1 Compiler Lane, Arlington"),
    ("alan@example.com", "Alan Turing", "3 Enigma Close, Wilmslow"),
    ("edsger@example.com", "Edsger Dijkstra", "4 Shortest Path, Nuenen"),
    ("barbara@example.com", "Barbara Liskov", "5 Substitution Street, Boston"),
    ("leslie@example.com", "Leslie Lamport", "6 Paxos Place, Palo Alto"),
]
PAST_RESERVED = ", ".join(f'[data-stage="{s}"] [data-order-id="{{0}}"]' for s in ("packed", "dispatched", "delivered"))


def place(base: str, buyer: tuple[str, str, str], lines: list[tuple[str, int]]) -> str:
    email, name, address = buyer
    body = {"email": email, "name": name, "address": address, "lines": [{"sku": s, "quantity": q} for s, q in lines]}
    status, placed = http_json("POST", f"{base}/api/orders", body)
    assert status == 201, placed
    return placed["id"]


def test_screenshots_of_the_dashboard_and_the_storefront(stack, staff_user, browser):
    skus = demo_catalog()
    assert "LMP-011" in skus  # the scarcest product (3 units): ordering 5 is rejected
    # a courier step of 2 s keeps the second wave of orders on the board, between columns, for the picture
    base = start(stack, step_seconds="2")
    SHOTS.mkdir(parents=True, exist_ok=True)

    dash = browser.page(base, 1440, 900)
    log_in(dash, then="/dashboard/")
    open_dashboard(dash)

    first_wave = [
        place(base, BUYERS[0], [("MUG-001", 2), ("STK-005", 3)]),
        place(base, BUYERS[1], [("TEE-002", 1)]),
        place(base, BUYERS[2], [("LMP-011", 5)]),  # more than the 3 in stock: rejected
    ]
    expect(dash.locator('[data-stage="delivered"] [data-order-id]')).to_have_count(2, timeout=60_000)
    expect(dash.locator(f'[data-stage="rejected"] [data-order-id="{first_wave[2]}"]')).to_be_visible()
    dash.locator(f'[data-order-id="{first_wave[0]}"]').click()  # its journey fills the side panel
    expect(dash.locator("#journey-body li").nth(4)).to_be_visible()  # placed, reserved, ... delivered
    # The second wave is staggered so that the picture catches cards in several columns at once (when the
    # machine keeps up; the waits below only need each card to be on the board, so a slow run stays green).
    fourth = place(base, BUYERS[3], [("HOD-008", 1), ("SOC-009", 2)])
    expect(dash.locator(PAST_RESERVED.format(fourth)).first).to_be_visible(timeout=60_000)
    with ThreadPoolExecutor(2) as pool:
        last = list(pool.map(place, [base] * 2, BUYERS[4:], [[("NTB-006", 1), ("PEN-007", 4)], [("CAP-003", 1)]]))
    for order_id in last:
        expect(dash.locator(f'[data-stage] [data-order-id="{order_id}"]')).to_be_visible(timeout=60_000)
    dash.evaluate("() => window.scrollTo(0, 0)")  # choosing a card scrolled to its journey
    dash.screenshot(path=str(SHOTS / "dashboard.png"), animations="disabled")

    shop = browser.page(base, 1440, 900)
    shop.goto("/")
    cards = shop.locator(f'a[href="/products/{skus[0]}/"]')
    expect(cards).to_be_visible()
    expect(shop.locator('a[href^="/products/"]')).to_have_count(len(skus))
    shop.wait_for_function("() => [...document.images].filter((i) => i.loading !== 'lazy').every((i) => i.complete)")
    shop.screenshot(path=str(SHOTS / "storefront.png"))

    for name in ("dashboard.png", "storefront.png"):
        assert (SHOTS / name).stat().st_size > 10_000, name
