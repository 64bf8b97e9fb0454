"""Every page passes its own Content-Security-Policy: no inline script, style or handler is refused anywhere
a customer or staff member goes (storefront, product, cart, checkout, order page, dashboard, admin)."""

import pytest
from playwright.sync_api import expect

from inventory.models import StockItem
from tests.browser.helpers import add_to_cart, buy, log_in, open_dashboard, product, start

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]

# Runs before any page script (Playwright's init scripts are not subject to the page's policy).
RECORD_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""


def test_no_page_violates_the_content_security_policy(stack, browser, staff_user):
    sku = product("CSP-MUG", 50, "Policy Mug", "7.50")
    base = start(stack, consumers=("shop", "inventory", "dashboard"), celery=False)
    violations = []

    def page():
        p = browser.page(base)
        p.context.add_init_script(RECORD_VIOLATIONS)
        p.on("console", lambda m: violations.append(f"{p.url}: {m.text}") if _is_csp(m.text) else None)
        return p

    customer = page()
    response = customer.goto("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    add_to_cart(customer, sku, 2)  # storefront, product page, cart
    order_id = buy(customer, sku, 1)  # cart, checkout, order page
    expect(customer.locator("[data-order-status]")).to_have_attribute("data-order-status", "reserved")

    staff = page()
    log_in(staff)  # admin login
    open_dashboard(staff)
    expect(staff.locator(f'[data-order-id="{order_id}"]')).to_have_count(1)
    item = StockItem.objects.using("inventory").get(sku=sku)
    for path in (
        "/admin/",
        "/admin/inventory/stockitem/",
        f"/admin/inventory/stockitem/{item.pk}/change/",
        "/admin/dashboard/deadletter/",
        "/admin/auth/user/add/",
    ):
        assert staff.goto(path).status == 200, path
    # the restock action's own page
    staff.goto("/admin/inventory/stockitem/")
    staff.locator(f'input[name=_selected_action][value="{item.pk}"]').check()
    staff.select_option("select[name=action]", "restock")
    staff.click("button[name=index]")
    expect(staff.locator("h1")).to_have_text("Restock")

    assert violations == [], "\n".join(violations)


def _is_csp(text: str) -> bool:
    return "Content Security Policy" in text or "CSP violation" in text
