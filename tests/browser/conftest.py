"""Browser tests: Debian's Chromium (never a downloaded browser) driven by Playwright's sync API against the
real stack (daphne, consumers, Celery, Kafka, Redis) that the `stack` fixture starts for each test."""

from __future__ import annotations

import signal
import subprocess

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser.helpers import STAFF_PASSWORD, STAFF_USERNAME, Browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

expect.set_options(timeout=30_000)  # a 2-core machine shared with other suites: generous, never a sleep


@pytest.fixture(autouse=True)
def _stop_together(stack):
    """After the test (and its browser), signal every process at once and let them finish side by side;
    `stack` then finds them stopped (and still prints their logs on failure) instead of stopping them in turn."""
    yield
    running = [p for p in stack.processes.values() if p.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            pass  # `stack` kills what is left


@pytest.fixture
def staff_user():
    """A superuser in the test's `default` database, able to log in to the real (non-test) web process."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.contrib.auth.models import User

    user = User.objects.create_user(STAFF_USERNAME, "admin@example.com", is_staff=True, is_superuser=True)
    # The test settings hash with MD5, which daphne (config.settings) does not accept: store a PBKDF2 hash
    # (few iterations, for speed; the web process upgrades it on the first login).
    user.password = PBKDF2PasswordHasher().encode(STAFF_PASSWORD, "browsertestsalt", iterations=1000)
    user.save(update_fields=["password"])
    return user


@pytest.fixture
def browser(stack, monkeypatch, request):
    """A fresh Chromium for one test; each `browser.page()` is a separate context (its own cookies).

    Depends on `stack` so that the environment of the test's processes is fixed before the one below is set.
    """
    # Playwright's sync API keeps an asyncio loop on this thread, and Django refuses ORM calls from a thread
    # with a running loop; the test's own seeding and the database teardown need them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        wrapper = Browser(chromium)
        try:
            yield wrapper
            if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
                wrapper.dump(stack.logdir)
        finally:
            chromium.close()
