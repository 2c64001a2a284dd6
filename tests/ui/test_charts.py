"""The History and Energy pages and their charts in Chromium against a real `emsbox run`."""

import csv
import io
import re
import time
from datetime import datetime
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import Page, expect
from ui_support import ADMIN, ADMIN_PASSWORD, PageProblems, login, overflow, screenshot

HISTORY_WAIT_S = 90
NUMBER = re.compile(r"\d+")
POSITIVE = re.compile(r"[1-9]\d*")
VARS = ("p_sys", "v_l1")


def _api(page: Page, served, path: str, **params) -> dict:
    """GET an API path with the page's session; fails on any error status."""
    r = page.request.get(f"{served.url}api/v1{path}", params=params)
    assert r.ok, (r.status, r.text())
    return r.json()


@pytest.fixture(scope="module")
def stored(ready):
    """The ``ready`` server once its store holds some 45 s of one-second history."""
    deadline = time.monotonic() + HISTORY_WAIT_S
    with httpx.Client(base_url=f"{ready.url}api/v1", verify=False, timeout=30) as client:
        r = client.post("/login", json={"name": ADMIN, "password": ADMIN_PASSWORD})
        assert r.status_code == 200, r.text
        while True:
            start = int(time.time()) - 120
            r = client.get("/loads/main/history", params={"vars": "p_sys", "start": start})
            assert r.status_code == 200, r.text
            if len(r.json()["series"].get("p_sys", {}).get("t", [])) >= 45:
                return ready
            if time.monotonic() > deadline:
                pytest.fail(f"too little p_sys history within {HISTORY_WAIT_S} s: {r.text}")
            time.sleep(1.0)  # polling the server, not waiting for the page


def _open(page: Page, served, path: str) -> PageProblems:
    """Log in, then open ``path`` (a hash such as ``#/history?...``), recording problems."""
    login(page, served)
    problems = PageProblems(page)
    page.goto(served.url + path)
    return problems


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def _stable_window(seconds: int = 50) -> tuple[int, int]:
    """A range that ended long enough ago that everything in it is committed to the store."""
    end = int(time.time()) - 10
    return end - seconds, end


def test_history_shows_the_stored_history_and_exports_it_as_csv(page, stored, tmp_path):
    login(page, stored)
    problems = PageProblems(page)
    start, end = _stable_window()
    page.goto(
        f"{stored.url}#/history?load=main&vars=p_sys,v_l1&range=custom&start={start}&end={end}"
    )
    chart = page.locator("#history-chart")
    expect(chart).to_have_attribute("data-count", NUMBER)
    expect(chart.locator("canvas")).to_be_visible()
    expect(chart.locator(".chart-legend-item")).to_have_count(2)
    expect(page.locator("#history-from")).to_be_visible()

    # The chart shows exactly what the API gives for the same request.
    points = chart.get_attribute("data-points")
    assert chart.get_attribute("data-start") == str(start)
    assert chart.get_attribute("data-end") == str(end)
    body = _api(
        page,
        stored,
        "/loads/main/history",
        vars="p_sys,v_l1",
        start=str(start),
        end=str(end),
        points=points,
    )
    times = sorted(set(body["series"]["p_sys"]["t"]) | set(body["series"]["v_l1"]["t"]))
    assert len(times) >= 30
    expect(chart).to_have_attribute("data-buckets", str(len(times)))
    expect(page.locator(".history-status")).to_contain_text(f"Points: {len(times)}")

    # CSV export of exactly the shown range and variables: avg, min and max per variable.
    with page.expect_download() as info:
        page.click("#history-export")
    download = info.value
    assert download.suggested_filename.startswith("main-history-") and (
        download.suggested_filename.endswith(".csv")
    )
    path = tmp_path / "history.csv"
    download.save_as(path)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows[0] == [
        "time (UTC)",
        "p_sys avg (W)",
        "p_sys min (W)",
        "p_sys max (W)",
        "v_l1 avg (V)",
        "v_l1 min (V)",
        "v_l1 max (V)",
    ]
    assert len(rows) - 1 == len(times)
    for row, t_s in zip(rows[1:], times, strict=True):
        written = datetime.fromisoformat(row[0].replace("Z", "+00:00")).timestamp()
        assert abs(written - t_s) <= 0.001, (row[0], t_s)
        for v, name in enumerate(VARS):
            series = body["series"][name]
            k = series["t"].index(t_s) if t_s in series["t"] else None
            for j, stat in enumerate(("avg", "min", "max")):
                cell = row[1 + 3 * v + j]
                expected = None if k is None else series[stat][k]
                assert (float(cell) if cell else None) == expected, (name, stat, row)
    problems.assert_none()


def test_range_presets_change_the_request_and_stay_in_the_address(page, stored):
    problems = _open(page, stored, "#/history?load=main&vars=p_sys&range=hour")
    chart = page.locator("#history-chart")
    expect(chart).to_have_attribute("data-count", NUMBER)
    for preset, span in (("day", 86400), ("week", 7 * 86400), ("month", 31 * 86400)):
        with page.expect_request(lambda r: "/api/v1/loads/main/history?" in r.url) as info:
            page.click(f"[data-range={preset}]")
        query = _query(info.value.url)
        assert query["vars"] == "p_sys"
        assert span <= int(query["end"]) - int(query["start"]) <= span + 2
        assert abs(int(query["end"]) - time.time()) < 30
        expect(page.locator(f"[data-range={preset}]")).to_have_attribute("aria-pressed", "true")
        expect(page).to_have_url(re.compile(rf"range={preset}"))
        expect(chart).to_have_attribute("data-count", NUMBER)

    # Another variable from the chooser; the address keeps it, so a reload shows the same.
    page.click(".history-vars summary")
    page.check("#var-v_l2")
    expect(page).to_have_url(re.compile(r"vars=p_sys%2Cv_l2"))
    expect(chart.locator(".chart-legend-item")).to_have_count(2)
    page.reload()
    expect(page.locator("[data-range=month]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#history-chart .chart-legend-item")).to_have_count(2)
    problems.assert_none()


def test_dragging_on_the_chart_zooms_and_the_zoom_can_be_reset(page, stored):
    login(page, stored)
    problems = PageProblems(page)
    start, end = _stable_window(60)
    page.goto(f"{stored.url}#/history?load=main&vars=p_sys&range=custom&start={start}&end={end}")
    chart = page.locator("#history-chart")
    expect(chart).to_have_attribute("data-count", NUMBER)
    box = chart.locator(".u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    with page.expect_request(lambda r: "/api/v1/loads/main/history?" in r.url) as info:
        page.mouse.move(box["x"] + box["width"] * 0.25, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
        page.mouse.move(box["x"] + box["width"] * 0.75, y, steps=5)
        page.mouse.up()
    query = _query(info.value.url)
    zoomed = int(query["end"]) - int(query["start"])
    assert start < int(query["start"]) < int(query["end"]) < end
    assert 20 <= zoomed <= 40, zoomed
    # Refetched at full resolution: about one bucket per pixel of the chart.
    assert abs(int(query["points"]) - box["width"]) < 60
    expect(page).to_have_url(re.compile(r"zoom=\d+%2C\d+"))
    expect(page.locator("#history-reset-zoom")).to_be_visible()
    expect(chart).to_have_attribute("data-start", query["start"])

    with page.expect_request(lambda r: "/api/v1/loads/main/history?" in r.url) as info:
        page.click("#history-reset-zoom")
    query = _query(info.value.url)
    assert (int(query["start"]), int(query["end"])) == (start, end)
    expect(page.locator("#history-reset-zoom")).to_be_hidden()
    problems.assert_none()


def test_an_empty_range_says_so_and_a_refused_request_shows_the_servers_reason(page, stored):
    login(page, stored)
    page.goto(
        f"{stored.url}#/history?load=main&vars=p_sys&range=custom&start=1600000000&end=1600086400"
    )
    expect(page.locator(".history-status")).to_have_text("No data in this range.")
    expect(page.locator("#history-chart")).to_have_attribute("data-buckets", "0")
    expect(page.locator("#history-export")).to_be_disabled()

    # A start after the end: the API refuses it and the page shows its words.
    page.fill("#history-from", "2026-01-02T00:00")
    page.fill("#history-to", "2026-01-01T00:00")
    page.click("#history-apply")
    expect(page.locator("#history-error")).to_contain_text("start must be before end")


def test_live_chart_gets_new_points_over_time(page, stored):
    problems = _open(page, stored, "#/history?load=main&vars=p_sys,q_sys&range=live")
    chart = page.locator("#history-chart")
    expect(chart).to_have_attribute("data-count", NUMBER)
    expect(chart.locator("canvas")).to_be_visible()
    expect(page.locator("#history-export")).to_be_hidden()
    first = int(chart.get_attribute("data-count"))
    page.wait_for_function(
        "n => Number(document.querySelector('#history-chart').dataset.count) >= n + 3",
        arg=first,
        timeout=15_000,
    )
    # The legend shows the latest value, in the same units as the live stream's.
    expect(chart.locator(".chart-legend-value").first).to_contain_text("W")
    problems.assert_none()


def test_energy_page_shows_bars_and_a_table_and_exports_it(page, stored, tmp_path):
    problems = _open(page, stored, "#/energy?load=main&period=day")
    chart = page.locator("#energy-chart")
    expect(chart).to_have_attribute("data-count", POSITIVE)
    expect(chart.locator("canvas")).to_be_visible()
    body = _api(
        page, stored, "/loads/main/energy", period="day", start=str(int(time.time()) - 86400)
    )
    expect(chart).to_have_attribute("data-series", str(len(body["periods"][-1]["values"]) and 4))
    rows = page.locator("#energy-table tbody tr")
    expect(rows).to_have_count(int(chart.get_attribute("data-count")))
    running = page.locator("#energy-table tr.running")
    expect(running).to_have_count(1)
    expect(running.locator("th")).to_contain_text("(running)")
    shown = float(running.locator("td[data-variable=kwh_imp]").inner_text().replace(",", ""))
    assert abs(shown - body["periods"][-1]["values"]["kwh_imp"]) < 0.05

    with page.expect_download() as info:
        page.click("#energy-export")
    path = tmp_path / "energy.csv"
    info.value.save_as(path)
    lines = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert lines[0] == [
        "start (UTC)",
        "end (UTC)",
        "complete",
        "kwh_imp (kWh)",
        "kwh_exp (kWh)",
        "kwh_imp_t1 (kWh)",
        "kwh_imp_t2 (kWh)",
    ]
    assert len(lines) - 1 == rows.count()
    assert lines[-1][2] == "false"
    assert abs(float(lines[-1][3]) - body["periods"][-1]["values"]["kwh_imp"]) < 0.05

    with page.expect_request(lambda r: "/api/v1/loads/main/energy?" in r.url) as info:
        page.click("[data-period=month]")
    assert _query(info.value.url)["period"] == "month"
    expect(page).to_have_url(re.compile(r"period=month"))
    expect(page.locator("#energy-table caption")).to_contain_text("Energy per month")
    problems.assert_none()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_screenshots_and_no_horizontal_scrolling(size, page, phone_page, stored):
    p = page if size == "desktop" else phone_page
    problems = _open(p, stored, "#/history?load=main&vars=p_sys,v_l1,v_l2,v_l3&range=hour")
    expect(p.locator("#history-chart")).to_have_attribute("data-count", NUMBER)
    screenshot(p, f"charts-history-{size}")
    assert overflow(p) <= 0
    p.goto(f"{stored.url}#/energy?load=main&period=day")
    expect(p.locator("#energy-chart")).to_have_attribute("data-count", NUMBER)
    screenshot(p, f"charts-energy-{size}")
    assert overflow(p) <= 0
    problems.assert_none()


def test_pages_speak_italian_with_italian_numbers(page, stored):
    login(page, stored)
    r = page.request.put(f"{stored.url}api/v1/me/preferences", data={"language": "it"})
    assert r.ok, r.text()
    try:
        page.reload()
        expect(page.locator("#language")).to_have_value("it")
        problems = PageProblems(page)
        page.goto(f"{stored.url}#/history?load=main&vars=p_sys&range=hour")
        expect(page.locator("#page > .page > h2")).to_have_text("Storico")
        expect(page.locator("#history-chart")).to_have_attribute("data-count", NUMBER)
        expect(page.locator("[data-range=custom]")).to_have_text("Personalizzato")
        assert "charts." not in page.locator("main").inner_text()
        page.goto(f"{stored.url}#/energy?load=main&period=month")
        expect(page.locator("#page > .page > h2")).to_have_text("Energia")
        expect(page.locator("#energy-table caption")).to_contain_text("Energia per mese")
        # Decimal comma in the table, as Italian writes numbers.
        expect(page.locator("#energy-table td[data-variable=kwh_imp]").first).to_have_text(
            re.compile(r"^\d+,\d\d$")
        )
        assert "charts." not in page.locator("main").inner_text()
        problems.assert_none()
    finally:
        page.request.put(f"{stored.url}api/v1/me/preferences", data={"language": "en"})
