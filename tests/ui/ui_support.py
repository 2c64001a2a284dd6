"""What the browser tests share: a real `emsbox run` process, setup and login, screenshots,
and the collection of a page's console errors and failed requests.

(A module of its own, not conftest.py: test modules import these names, and several test
directories have a conftest.py.)
"""

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from emsbox.testing.service_run import ServedProcess

START_DEADLINE_S = 60
# Well within pytest-timeout's 300 s per test (pyproject), so a stuck page fails with a message.
ACTION_TIMEOUT_MS = 15_000


class Served(ServedProcess):
    """A real `emsbox run` on 127.0.0.1 with ephemeral ports; a test fails if it does not start."""

    def __init__(self, data_dir: Path) -> None:
        try:
            super().__init__(data_dir, start_deadline_s=START_DEADLINE_S)
        except RuntimeError as error:
            pytest.fail(str(error))


ADMIN = "admin"
ADMIN_PASSWORD = "a long enough password"


def complete_setup(served: Served, site: str = "Test site", loads: list | None = None) -> None:
    """Finish the first-start setup through its API (admin ``ADMIN`` / ``ADMIN_PASSWORD``)."""

    body = {
        "admin": {"name": ADMIN, "password": ADMIN_PASSWORD},
        "site": {"name": site, "timezone": "Europe/Rome"},
        "meter": {"loads": loads or []},
    }
    r = httpx.post(f"{served.url}api/v1/setup", json=body, verify=False, timeout=60)
    assert r.status_code == 201, r.text


def login(page: Page, served: Served, name: str = ADMIN, password: str = ADMIN_PASSWORD) -> None:
    """Log in through the login page and wait for the app's top bar."""
    page.goto(served.url)
    page.fill("#login-name", name)
    page.fill("#login-password", password)
    page.click("button[type=submit]")
    page.locator(".topbar h1").wait_for()


def esc(path: str) -> str:
    """A CSS id selector for a settings key path (dots and brackets escaped)."""
    return "#" + re.sub(r"([.\[\]])", r"\\\1", path)


@contextmanager
def client(
    served: Served, name: str = ADMIN, password: str = ADMIN_PASSWORD
) -> Iterator[httpx.Client]:
    """An API client logged in as ``name`` (session cookie)."""
    with httpx.Client(base_url=f"{served.url}api/v1", verify=False, timeout=30) as c:
        r = c.post("/login", json={"name": name, "password": password})
        assert r.status_code == 200, r.text
        yield c


SCREENSHOTS = Path(os.environ.get("EMSBOX_SCREENSHOTS", "test-output/screenshots"))


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as ``<name>.png`` for a person to look at; returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class PageProblems:
    """Console errors and failed requests of a page, collected while a test runs."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", self._failed)

    def _failed(self, request) -> None:
        # Leaving a page aborts its live stream and whatever poll (the alarms' badge) was under
        # way: the browser's own doing, not a failure of the device (a connection the server
        # breaks fails otherwise, e.g. net::ERR_EMPTY_RESPONSE).
        aborted = request.failure == "net::ERR_ABORTED"
        if not (aborted or request.url.endswith("/api/v1/stream")):
            self.errors.append(f"{request.method} {request.url}: {request.failure}")

    def assert_none(self) -> None:
        """Fail with every problem seen so far."""
        assert not self.errors, self.errors


def overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (a mobile browser widens its layout
    viewport to the content, so the window's own width is the measure)."""
    return page.evaluate("document.documentElement.scrollWidth") - page.viewport_size["width"]
