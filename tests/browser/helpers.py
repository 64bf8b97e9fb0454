"""The browser tests' stack and what they do in pages (through the DOM hooks of ARCHITECTURE 7)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import Browser as PlaywrightBrowser
from playwright.sync_api import Page, expect

from tests.support import free_port

STAFF_USERNAME, STAFF_PASSWORD = "admin", "browser-test-secret"
CUSTOMER = {"email": "grace@example.com", "name": "Grace Hopper", "address": "1 Compiler Lane, Arlington"}
ORDER_URL = re.compile(r"/orders/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/$")
LIFECYCLE = ["placed", "reserved", "packed", "dispatched", "delivered"]
EVERY_CONSUMER = ("shop", "inventory", "shipping", "dashboard")


# --------------------------------------------------------------------------- the stack


def start(stack, consumers=EVERY_CONSUMER, celery: bool = True, step_seconds: str = "1") -> str:
    """Daphne on a free port, the given consumers and a Celery worker; returns the base URL.

    SHIPPING_STEP_SECONDS > 0 so that cards stay long enough in each column to be seen moving.
    """
    stack.env["SHIPPING_STEP_SECONDS"] = step_seconds
    port = free_port()
    for service in consumers:
        stack.consumer(service)
    if celery:
        stack.celery()
    stack.web(port)
    return f"http://127.0.0.1:{port}"


def product(sku: str, units: int, name: str | None = None, price: str = "10.00", **fields) -> str:
    """A product in the shop and its stock in inventory (test databases, as the e2e tests seed them)."""
    from inventory import services as inventory
    from shop.models import Product

    Product.objects.using("shop").create(
        sku=sku, name=name or sku.title(), price=Decimal(price), available=units, **fields
    )
    inventory.set_stock(sku, units)
    return sku


def demo_catalog() -> list[str]:
    """The demo catalogue (demo/catalog.py), with its pictures, as `seed_demo` makes it."""
    from demo.catalog import PRODUCTS

    return [
        product(sku, units, name, price, description=description, image=f"shop/img/{sku.lower()}.svg")
        for sku, name, description, price, units in PRODUCTS
    ]


# --------------------------------------------------------------------------- pages


class Browser:
    """One Chromium; every page gets a context of its own, with its console kept for failure reports."""

    def __init__(self, chromium: PlaywrightBrowser):
        self.chromium = chromium
        self.console: list[str] = []
        self.pages: list[Page] = []

    def page(self, base_url: str, width: int = 1280, height: int = 900) -> Page:
        context = self.chromium.new_context(base_url=base_url, viewport={"width": width, "height": height})
        context.set_default_timeout(30_000)
        context.set_default_navigation_timeout(60_000)
        page = context.new_page()
        n = len(self.pages)
        page.on("console", lambda m: self.console.append(f"[page {n}] {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"[page {n}] uncaught: {e}"))
        self.pages.append(page)
        return page

    def dump(self, logdir: Path) -> None:
        """Screenshots of every open page and the console, for a failed test."""
        for n, page in enumerate(self.pages):
            path = logdir / f"page-{n}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
                print(f"\n[browser] page {n} at {page.url}: {path}")
            except Exception as exc:  # a crashed page must not hide the real failure
                print(f"\n[browser] page {n}: no screenshot ({exc})")
        print("\n===== browser console (last 80 lines) =====\n" + "\n".join(self.console[-80:]))


def log_in(page: Page, then: str = "/dashboard/") -> None:
    """Staff log in through the admin's login form, which sends them on to `then`."""
    page.goto(f"/admin/login/?next={then}")
    page.fill("input[name=username]", STAFF_USERNAME)
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("form#login-form [type=submit]")
    expect(page).to_have_url(re.compile(re.escape(then) + "$"))


def open_dashboard(page: Page) -> None:
    """The dashboard, connected (its websocket live and caught up), with a marker that a reload would lose."""
    if not page.url.endswith("/dashboard/"):
        page.goto("/dashboard/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    page.evaluate("() => { window.__notReloaded = true; }")


def watch_cards(page: Page) -> None:
    """Record, for every order card, the columns (`[data-stage]`) it shows up in, in order, as they change."""
    page.evaluate(
        """() => {
          const seen = (window.__cardStages = {});
          const record = () => {
            for (const card of document.querySelectorAll("[data-stage] [data-order-id]")) {
              const stage = card.closest("[data-stage]").dataset.stage;
              const stages = (seen[card.dataset.orderId] ||= []);
              if (stages[stages.length - 1] !== stage) stages.push(stage);
            }
          };
          new MutationObserver(record).observe(document.body, { childList: true, subtree: true });
          record();
        }"""
    )


def card_stages(page: Page, order_id: str) -> list[str]:
    return page.evaluate("(id) => (window.__cardStages || {})[id] || []", order_id)


def watch_order_status(page: Page) -> None:
    """Record every value the order page's `[data-order-status]` takes, and mark the page against reloads."""
    page.evaluate(
        """() => {
          window.__notReloaded = true;
          const el = document.querySelector("[data-order-status]");
          const seen = (window.__statuses = [el.dataset.orderStatus]);
          new MutationObserver(() => {
            if (seen[seen.length - 1] !== el.dataset.orderStatus) seen.push(el.dataset.orderStatus);
          }).observe(el, { attributes: true, attributeFilter: ["data-order-status"] });
        }"""
    )


def not_reloaded(page: Page) -> bool:
    return page.evaluate("() => window.__notReloaded === true")


def add_to_cart(page: Page, sku: str, quantity: int) -> None:
    """From the product list: open the product, choose a quantity, add it; the browser lands on the cart."""
    page.goto("/")
    page.click(f'a[href="/products/{sku}/"]')
    expect(page).to_have_url(re.compile(rf"/products/{re.escape(sku)}/$"))
    form = page.locator("form:has([name=quantity])")
    form.locator("[name=quantity]").fill(str(quantity))
    form.locator("[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/cart/$"))


def go_to_checkout(page: Page) -> None:
    if not page.url.endswith("/cart/"):
        page.goto("/cart/")
    page.locator('form[action$="/checkout/"] [type=submit]').click()
    expect(page).to_have_url(re.compile(r"/checkout/\??$"))  # a GET form without fields adds a bare "?"


def fill_checkout(page: Page, email: str, name: str, address: str, *, submit: bool = True) -> None:
    form = page.locator("form:has([name=email])")
    form.locator("[name=email]").fill(email)
    form.locator("[name=name]").fill(name)
    form.locator("[name=address]").fill(address)
    if submit:
        form.locator("[type=submit]").click()


def buy(page: Page, sku: str, quantity: int, customer: dict = CUSTOMER) -> str:
    """The whole storefront path; returns the id of the order whose page the browser lands on."""
    add_to_cart(page, sku, quantity)
    go_to_checkout(page)
    fill_checkout(page, customer["email"], customer["name"], customer["address"])
    expect(page).to_have_url(ORDER_URL, timeout=60_000)
    return ORDER_URL.search(page.url)[1]


def open_socket(page: Page, path: str, timeout_ms: int = 30_000) -> dict:
    """Open a websocket from `page` (same origin, same cookies) and report how it ended.

    Resolves when the server closes it ({"code", "frames", "opened"}), or when a first frame arrives
    (with "open": true) — so both a refusal and an acceptance are seen without waiting on a clock.
    """
    return page.evaluate(
        """([path, timeoutMs]) => new Promise((resolve) => {
          const ws = new WebSocket(`ws://${location.host}${path}`);
          const seen = { opened: false, frames: 0, code: null, first: null };
          ws.onopen = () => { seen.opened = true; };
          ws.onmessage = (ev) => {
            seen.frames += 1;
            seen.first = seen.first ?? ev.data;
            resolve({ ...seen, open: true });
            ws.close();
          };
          ws.onclose = (ev) => resolve({ ...seen, code: ev.code, open: false });
          setTimeout(() => resolve({ ...seen, open: ws.readyState === WebSocket.OPEN, timedOut: true }), timeoutMs);
        })""",
        [path, timeout_ms],
    )
