"""The web app in Chromium: first load of the dashboard and rendering a year chart (prints only).

Usage: .venv/bin/python bench/bench_webapp.py [--runs 5]

Starts `emsbox run` in a fresh data directory (HTTPS on 127.0.0.1), finishes the first-start
setup through the API, then drives Debian's Chromium (/usr/bin/chromium) through Playwright:

1. First load of the dashboard after login with a cold cache: time from navigation to the first
   live value tile showing a number, and the bytes transferred meanwhile (encoded body and
   header sizes from the DevTools protocol's Network.loadingFinished; the live stream, which
   never finishes, is not counted).
2. First load of the History page the same way: time to the drawn chart, bytes transferred.
3. A year chart: the History page's year range answered with a synthetic year of hourly buckets
   (8760 points × 3 variables with min and max), timed in the page from the answer's arrival to
   uPlot's first draw (the chart's ``data-render-ms``).

Targets: first load < 1 s and < 500 kB, year chart < 300 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from emsbox.testing.browser import CHROMIUM, CHROMIUM_ARGS
from emsbox.testing.service_run import ServedProcess

ADMIN, PASSWORD = "bench", "bench password 1"
YEAR_POINTS = 8760
YEAR_VARS = ("p_sys", "q_sys", "s_sys")


class Server(ServedProcess):
    """`emsbox run` in a fresh data directory, with the URL it printed."""

    def __init__(self) -> None:
        super().__init__(Path(tempfile.mkdtemp(prefix="emsbox-bench-web-")) / "data")

    def setup(self) -> None:
        """Finish the first-start setup: an admin and one extension load."""
        body = {
            "admin": {"name": ADMIN, "password": PASSWORD},
            "site": {"name": "Bench site", "timezone": "Europe/Rome"},
            "meter": {
                "loads": [{"name": "hvac", "wiring": "3P4W", "module": "5A", "ct_primary_a": 200}]
            },
        }
        r = httpx.post(f"{self.url}api/v1/setup", json=body, verify=False, timeout=60)
        r.raise_for_status()


class Transfers:
    """Bytes of finished network requests of a page, from the DevTools protocol."""

    def __init__(self, page: Page) -> None:
        self.bytes = 0
        self.requests = 0
        session = page.context.new_cdp_session(page)
        session.send("Network.enable")
        session.on("Network.loadingFinished", self._finished)

    def _finished(self, event: dict) -> None:
        self.bytes += event["encodedDataLength"]
        self.requests += 1

    def reset(self) -> None:
        """Count from zero."""
        self.bytes = 0
        self.requests = 0


def first_load(browser, url: str) -> tuple[float, float, int]:
    """Dashboard after login with a cold cache: ms to the first number, kB, requests."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    try:
        r = context.request.post(f"{url}api/v1/login", data={"name": ADMIN, "password": PASSWORD})
        assert r.ok, r.text()
        page = context.new_page()
        transfers = Transfers(page)
        # A load's default dashboard: its first widget is the main values as tiles.
        page.goto(f"{url}#/dashboard?load=main", wait_until="commit")
        # The first live value tile showing a number, in the page's own clock (from navigation).
        handle = page.wait_for_function(
            """() => {
              const values = ".tile-value output, [data-variable] output";
              for (const el of document.querySelectorAll(values)) {
                if (/\\d/.test(el.textContent)) return performance.now();
              }
              return false;
            }""",
            polling="raf",
            timeout=30_000,
        )
        ms = handle.json_value()
        page.wait_for_timeout(300)  # let finished-request events arrive
        return ms, transfers.bytes / 1000, transfers.requests
    finally:
        context.close()


def history_first_load(browser, url: str) -> tuple[float, float]:
    """History page after login with a cold cache: ms to the drawn chart, kB transferred."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    try:
        context.request.post(f"{url}api/v1/login", data={"name": ADMIN, "password": PASSWORD})
        page = context.new_page()
        transfers = Transfers(page)
        page.goto(f"{url}#/history?load=main&vars=p_sys&range=hour", wait_until="commit")
        handle = page.wait_for_function(
            "() => document.querySelector('#history-chart[data-render-ms]') && performance.now()",
            polling="raf",
            timeout=30_000,
        )
        ms = handle.json_value()
        page.wait_for_timeout(300)
        return ms, transfers.bytes / 1000
    finally:
        context.close()


def year_answer(points: int) -> str:
    """A history answer of ``points`` hourly buckets of three variables ending now."""
    end = math.floor(time.time() / 3600) * 3600
    t = [float(end - (points - k) * 3600) for k in range(points)]
    series = {}
    for j, name in enumerate(YEAR_VARS):
        avg = [
            round(3000 + 2000 * math.sin(k / 24 * 2 * math.pi + j) + 50 * j, 3)
            for k in range(points)
        ]
        series[name] = {
            "t": t,
            "avg": avg,
            "min": [round(v - 300, 3) for v in avg],
            "max": [round(v + 400, 3) for v in avg],
        }
    return json.dumps(
        {
            "load": "main",
            "start": time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(end - 366 * 86400)),
            "end": time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(end)),
            "points": points,
            "tier_resolution_s": 3600,
            "series": series,
        }
    )


def year_chart(browser, url: str, runs: int, points: int) -> list[float]:
    """ms from the answer's arrival to the first draw of a year chart, once per run."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    body = year_answer(points)
    try:
        context.request.post(f"{url}api/v1/login", data={"name": ADMIN, "password": PASSWORD})
        page = context.new_page()
        page.route(
            lambda u: "/api/v1/loads/main/history?" in u,
            lambda route: route.fulfill(status=200, content_type="application/json", body=body),
        )
        page.goto(url)
        page.locator("nav.mainnav").wait_for()
        vars_ = ",".join(YEAR_VARS)
        page.goto(f"{url}#/history?load=main&vars={vars_}&range=month")
        chart = page.locator(f"#history-chart[data-count='{points}'][data-render-ms]")
        chart.wait_for()  # warms up the code
        out = []
        for k in range(runs):
            # Each click on a range mounts a new chart and fetches the (synthetic) answer.
            page.click("[data-range=year]" if k % 2 == 0 else "[data-range=month]")
            chart.wait_for()
            out.append(float(chart.get_attribute("data-render-ms")))
        return out
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    server = Server()
    try:
        server.setup()
        time.sleep(3.0)  # the first readings and the store's first commit
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                loads = [first_load(browser, server.url) for _ in range(args.runs)]
                ms = [x[0] for x in loads]
                spread = f"min {min(ms):.0f}, max {max(ms):.0f}"
                print(f"first_load_ms={statistics.median(ms):.0f} ({spread})")
                print(f"transferred_kB={statistics.median(x[1] for x in loads):.1f}")
                print(f"requests={loads[0][2]}")
                history = [history_first_load(browser, server.url) for _ in range(args.runs)]
                print(f"history_first_load_ms={statistics.median(x[0] for x in history):.0f}")
                print(f"history_transferred_kB={statistics.median(x[1] for x in history):.1f}")
                for points in (YEAR_POINTS, 1000):
                    times = year_chart(browser, server.url, args.runs, points)
                    print(
                        f"year_chart_render_ms={statistics.median(times):.1f}"
                        f" (points={points}x{len(YEAR_VARS)} series with min/max,"
                        f" max {max(times):.1f})"
                    )
            finally:
                browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
