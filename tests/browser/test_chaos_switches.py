"""Chaos switches on the service map, in Chromium against real consumers: turn a switch on from the form,
see it on its service's node, watch a `fail` switch dead-letter an event, and see a switch that ends (here
turned off from outside the page, as its time limit would) leave the map without a reload."""

import pytest
from playwright.sync_api import expect

from eventbus import chaos, schemas
from eventbus.tests import kafka_helpers
from tests.browser.helpers import log_in, start
from tests.support import ROOT, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "shop", "inventory", "shipping", "dashboard"]),
]
PLACED = "conveyor.shop.order.placed.v1"


def test_switches_show_on_the_map_while_on_and_a_fail_switch_dead_letters(stack, staff_user, browser, settings):
    settings.CHAOS_ENABLED = True  # this process reads the switches too; the web process has DJANGO_DEBUG=1
    base = start(stack, consumers=("inventory", "shipping", "dashboard"), celery=False, step_seconds="0")
    page = browser.page(base, 1280, 900)
    log_in(page, then="/dashboard/map/")
    form = page.locator("#chaos-form")
    expect(page.locator("[data-chaos-none]")).to_be_visible()

    form.locator("select[name=service]").select_option("shipping")
    form.locator("select[name=kind]").select_option("pause")
    expect(form.locator("input[name=count]")).to_be_hidden()  # only the chosen switch's fields
    form.get_by_role("button", name="Turn on").click()
    expect(page.locator(".messages")).to_contain_text("shipping: paused for 5 min")
    expect(page.locator('[data-service="shipping"] [data-chaos]')).to_have_text("⚡ paused")
    expect(page.locator('[data-chaos-switch="shipping:pause"]')).to_contain_text("admin")

    form.locator("select[name=service]").select_option("inventory")
    form.locator("select[name=kind]").select_option("fail")
    form.locator("select[name=event_type]").select_option(PLACED)
    form.locator("input[name=count]").fill("1")
    form.get_by_role("button", name="Turn on").click()
    inventory_label = page.locator('[data-service="inventory"] [data-chaos]')
    expect(inventory_label).to_have_text(f"⚡ failing the next 1 of 1 {PLACED}")
    log = stack.logdir / "inventory.log"
    wait_for(lambda: "chaos switch on: failing" in log.read_text(errors="replace"), 30, "inventory to obey")
    kafka_helpers.send_placed("MUG-001")
    expect(inventory_label).to_have_text(f"⚡ failing the next 0 of 1 {PLACED}", timeout=30_000)
    orders = schemas.topic_name("shop.orders")
    page.reload()
    expect(page.locator(f'[data-edge="{orders}:inventory"] [data-dead-letters]')).to_have_text("☠ 1 dead")
    page.screenshot(path=str(ROOT / "docs" / "img" / "viewer-chaos.png"), full_page=True)

    chaos.turn_off(service="shipping", kind="pause")  # as the switch's time limit would
    expect(page.locator('[data-service="shipping"] [data-chaos]')).to_have_text("")
    expect(page.locator('[data-chaos-switch="shipping:pause"]')).to_have_count(0)
    page.locator('[data-chaos-switch="inventory:fail"]').get_by_role("button", name="Turn off").click()
    expect(page.locator(".messages")).to_contain_text("inventory: fail turned off")
    expect(inventory_label).to_have_text("")
