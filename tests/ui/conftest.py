"""Browser tests: a real `emsbox run` served over HTTPS, driven by Debian's Chromium via Playwright.

Playwright's own browser download is never used: Chromium comes from the `chromium` Debian
package (scripts/test installs it). Each module gets one server and one browser; each test gets
a fresh browser context (cookies, storage), so tests do not leak logins into each other.
"""

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from emsbox.testing.service_run import run_command, served_url

CHROMIUM = Path("/usr/bin/chromium")
# The closed test network refuses Chromium's background connections; these flags stop them.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Well within pytest-timeout's 300 s per test (pyproject), so a stuck page fails with a message.
ACTION_TIMEOUT_MS = 15_000
START_DEADLINE_S = 60


class Served:
    """A real `emsbox run` process on 127.0.0.1 with ephemeral ports, and the URL it printed."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.url = ""
        # Output goes to files, not pipes: a long-lived server never blocks on a full pipe.
        self.stdout_file = data_dir.with_name(data_dir.name + ".stdout")
        self.stderr_file = data_dir.with_name(data_dir.name + ".stderr")
        with self.stdout_file.open("w") as out, self.stderr_file.open("w") as err:
            self.proc = subprocess.Popen(
                run_command(data_dir, "--set", "web.http_port=0"),
                stdout=out,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_DEADLINE_S
        while not self.url:
            urls = (served_url(line) for line in self.stdout().splitlines())
            self.url = next((url for url in urls if url), "")
            if self.url:
                break
            if self.proc.poll() is not None:
                pytest.fail(
                    f"emsbox run exited with {self.proc.returncode} before printing its URL;"
                    f" stderr:\n{self.stderr()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"emsbox run printed no URL within {START_DEADLINE_S} s;"
                    f" stderr:\n{self.stderr()}"
                )
            time.sleep(0.1)

    def stdout(self) -> str:
        """Everything the server printed on stdout so far."""
        return self.stdout_file.read_text()

    def stderr(self) -> str:
        """Everything the server printed on stderr so far."""
        return self.stderr_file.read_text()

    def stop(self) -> int:
        """Stop the server as a service manager would (SIGTERM) and return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, launched through Playwright once per test module."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's `chromium` package"
            " (scripts/test installs it; never `playwright install`)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
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
