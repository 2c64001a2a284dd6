"""Browser tests: a real `emsbox run` served over HTTPS, driven by Debian's Chromium via Playwright.

Playwright's own browser download is never used: Chromium comes from the `chromium` Debian
package (scripts/test installs it). Each module gets one server and one browser; each test gets
a fresh browser context (cookies, storage), so tests do not leak logins into each other.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from ui_support import ACTION_TIMEOUT_MS, Served, complete_setup

from emsbox.testing.browser import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, launched through Playwright once per test module."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's `chromium` package"
            " (scripts/test installs it; never `playwright install`)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    """A real `emsbox run` in a fresh data directory, once per test module."""
    server = Served(tmp_path_factory.mktemp("ui") / "data")
    try:
        yield server
    finally:
        code = server.stop()
        assert code == 0, f"emsbox run exited with {code}; stderr:\n{server.stderr()}"


def _open_page(browser: Browser, **options) -> Iterator[Page]:
    """A page in a fresh context that accepts the server's self-signed certificate."""
    context = browser.new_context(ignore_https_errors=True, locale="en-US", **options)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A desktop-sized page (1280×800) in its own browser context."""
    yield from _open_page(browser, viewport={"width": 1280, "height": 800})


@pytest.fixture
def phone_page(browser: Browser) -> Iterator[Page]:
    """A phone-sized page (390×844, touch, mobile) in its own browser context."""
    yield from _open_page(
        browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )


@pytest.fixture(scope="module")
def ready(tmp_path_factory) -> Iterator[Served]:
    """A real `emsbox run` whose first-start setup is done: admin plus one extension load."""
    server = Served(tmp_path_factory.mktemp("ui") / "data")
    try:
        complete_setup(
            server,
            loads=[{"name": "hvac", "wiring": "3P4W", "module": "5A", "ct_primary_a": 200}],
        )
        yield server
    finally:
        code = server.stop()
        assert code == 0, f"emsbox run exited with {code}; stderr:\n{server.stderr()}"
