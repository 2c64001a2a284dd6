"""The browser test set-up works end to end: Chromium, the server's HTTPS and the fixtures."""

import json
import time

from emsbox import __version__


def test_the_browser_reaches_the_health_endpoint_over_https(page, served):
    assert served.url.startswith("https://127.0.0.1:")
    # Health is "degraded" until the first reading arrives, a moment after the URL is printed.
    deadline = time.monotonic() + 30
    while True:
        response = page.goto(f"{served.url}api/v1/health")
        assert response is not None and response.status == 200
        health = json.loads(page.locator("body").inner_text())
        if health["status"] == "ok" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert page.url.startswith("https://")
    assert health == {"status": "ok", "version": __version__}
