"""Every page of the web app, at desktop and phone size: no console errors, no failed requests,
no horizontal scrolling on a phone, a screenshot of each; the user's own dashboards; the
counters' partial commands; the power-quality and diagnostics pages.
"""

import re
import time

import httpx
import pytest
from playwright.sync_api import Page, expect
from ui_support import PageProblems, login, overflow, screenshot

# Every page of the navigation (an admin sees them all), and what shows it has drawn.
PAGES = {
    "dashboard": ".loads-table tr[data-load=hvac]",
    "history": "#page canvas",
    "energy": "#page canvas",
    "counters": "td[data-variable=kwh_imp]",
    "quality": "li[data-variable=thd_v_l1] output",
    "alarms": "#alarms-list .alarm-item",
    "diagnostics": "#diag-addresses",
    "settings": "#page input",
    "users": "#page table",
    "account": "#page form",
}


def _wait_for_numbers(page: Page, selector: str) -> None:
    expect(page.locator(selector).first).to_have_text(re.compile(r"\d"), timeout=30_000)


def test_the_navigation_lists_every_page_for_an_admin(page, ready):
    login(page, ready)
    links = page.locator(".mainnav a").evaluate_all("els => els.map(a => a.dataset.page)")
    assert links == list(PAGES)


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_draws_without_errors(name, size, page, phone_page, ready):
    tab = page if size == "desktop" else phone_page
    problems = PageProblems(tab)
    login(tab, ready)
    tab.goto(f"{ready.url}#/{name}")
    expect(tab.locator(f".mainnav a[data-page={name}]")).to_have_attribute("aria-current", "page")
    expect(tab.locator(PAGES[name]).first).to_be_visible(timeout=30_000)
    screenshot(tab, f"{name}-{size}")
    wider = overflow(tab)
    assert wider <= 0, f"{name} is {wider} px wider than the {size} screen"
    problems.assert_none()


def test_a_user_arranges_a_dashboard_and_finds_it_again(page, ready):
    problems = PageProblems(page)
    login(page, ready)
    page.goto(f"{ready.url}#/dashboard")
    page.click(".add-board")
    expect(page.locator(".board-title")).to_have_text("My dashboard 1")
    page.fill("#board-name", "Plant room")
    page.click("text=Rename")
    expect(page.locator(".board-title")).to_have_text("Plant room")
    # A gauge of the hvac load's current and a live chart of two powers.
    page.select_option("#widget-kind", "gauge")
    page.select_option("#widget-load", "hvac")
    page.select_option("#widget-vars", "i_l1")
    page.click(".add-widget")
    expect(page.locator(".widget")).to_have_count(2)
    page.select_option("#widget-kind", "live_chart")
    page.select_option("#widget-load", "main")
    page.select_option("#widget-vars", ["p_sys", "q_sys"])
    page.click(".add-widget")
    expect(page.locator(".widget")).to_have_count(3)
    kinds = page.locator(".widget").evaluate_all("els => els.map(e => e.dataset.kind)")
    assert kinds == ["tiles", "gauge", "live_chart"]
    page.locator(".widget[data-kind=live_chart] .move-up").click()
    page.locator(".widget[data-kind=tiles] .remove-widget").click()
    expect(page.locator(".widget")).to_have_count(2)
    page.click(".done")
    expect(page.locator(".widget-edit")).to_have_count(0)

    # Saved on the device for this user: a reload (or another browser) shows the same.
    saved = page.request.get(f"{ready.url}api/v1/me/preferences").json()["dashboards"]
    assert [b["name"] for b in saved] == ["Plant room"]
    assert [(w["kind"], w["load"], w.get("vars")) for w in saved[0]["widgets"]] == [
        ("live_chart", "main", ["p_sys", "q_sys"]),
        ("gauge", "hvac", ["i_l1"]),
    ]
    page.reload()
    expect(page.locator(".board-title")).to_have_text("Plant room")
    gauge = page.locator(".gauge[data-variable=i_l1]")
    expect(gauge).to_have_attribute("data-value", re.compile(r"\d"), timeout=30_000)
    assert float(gauge.get_attribute("data-value")) > 0
    screenshot(page, "dashboard-own")

    # A bad widget is refused by the device, not stored.
    r = page.request.put(
        f"{ready.url}api/v1/me/preferences",
        data={
            "dashboards": [
                {"name": "x", "widgets": [{"kind": "gauge", "load": "main", "vars": ["nope"]}]}
            ]
        },
    )
    assert r.status == 422
    page.click(".edit-board")
    page.click(".delete-board")
    expect(page.locator(".tab.own")).to_have_count(0)
    assert not page.request.get(f"{ready.url}api/v1/me/preferences").json().get("dashboards")
    problems.assert_none()


def _eventually(page, ready, predicate, seconds=10.0):
    """Wait until hvac's latest reading satisfies ``predicate`` (a reading lags by up to 1 s)."""
    deadline = time.monotonic() + seconds
    while True:
        values = page.request.get(f"{ready.url}api/v1/loads/hvac/now").json()["values"]
        if predicate(values):
            return
        assert time.monotonic() < deadline, values
        time.sleep(0.2)


def test_partial_counters_start_stop_and_reset_from_the_counters_page(page, ready):
    login(page, ready)
    page.goto(f"{ready.url}#/counters?load=hvac")
    _wait_for_numbers(page, "td[data-variable=kwh_imp_partial]")
    page.click(".partial-action[data-action=stop]")
    expect(page.locator(".partial .status")).to_have_text("Partial counters stopped.")
    expect(page.locator(".partial-state")).to_have_attribute("data-running", "false")
    page.click(".partial-action[data-action=reset]")
    page.click("dialog.confirm button[value=ok]")
    expect(page.locator(".partial .status")).to_have_text("Partial counters reset to zero.")
    expect(page.locator("td[data-variable=kwh_imp_partial]")).to_have_text("0.0")
    # The readings measured after the reset carry the zeroed, stopped counters.
    _eventually(page, ready, lambda v: v["kwh_imp_partial"] == 0 and not v["partial_running"])
    page.wait_for_timeout(2000)  # later readings keep them at zero on the page too
    expect(page.locator("td[data-variable=kwh_imp_partial]")).to_have_text("0.0")
    page.click(".partial-action[data-action=start]")
    expect(page.locator(".partial-state")).to_have_attribute("data-running", "true")
    # Cancelling the reset's confirmation changes nothing.
    page.click(".partial-action[data-action=reset]")
    page.click("dialog.confirm button[value=cancel]")
    expect(page.locator("dialog.confirm")).to_have_count(0)
    _eventually(page, ready, lambda v: v["partial_running"])
    page.wait_for_timeout(2000)
    assert page.request.get(f"{ready.url}api/v1/loads/hvac/now").json()["values"]["partial_running"]


def test_diagnostics_show_the_device_and_its_parts(page, ready):
    login(page, ready)
    page.goto(f"{ready.url}#/diagnostics")
    system = httpx.get(
        f"{ready.url}api/v1/system",
        verify=False,
        cookies={c["name"]: c["value"] for c in page.context.cookies()},
    ).json()
    expect(page.locator("#diag-version")).to_have_text(system["version"])
    for address in system["addresses"]:
        expect(page.locator("#diag-addresses")).to_contain_text(address["address"])
    expect(page.locator("table.parts tr")).to_have_count(len(system["parts"]))
    _wait_for_numbers(page, ".diag tr[data-load=hvac] td[data-variable=p_sys]")
    expect(page.locator(".diag-faults")).to_contain_text("No active faults.")
    expect(page.locator("#diag-protocols .gateway")).to_have_text(
        ["Modbus TCP: off", "Modbus RTU: off", "MQTT: off", "BACnet/IP: off"]
    )


# What an untranslated string looks like on a page: the key itself, e.g. "dash.new_board".
KEY = re.compile(
    r"\b(alarms|app|common|counters|dash|diag|interval|login|nav|period|quality|range|role|var|widget"
    r"|wizard|charts|settings|users)\.[a-z][\w.]*"
)


@pytest.mark.parametrize("language", ["en", "it"])
def test_every_page_is_complete_in_each_language(language, page, ready):
    login(page, ready)
    page.select_option("#language", language)
    expect(page.locator("html")).to_have_attribute("lang", language)
    for name, drawn in PAGES.items():
        page.goto(f"{ready.url}#/{name}")
        expect(page.locator(drawn).first).to_be_visible(timeout=30_000)
        text = page.locator("body").inner_text()
        assert not KEY.search(text), f"{name} ({language}) shows a key: {KEY.search(text)[0]}"
        if language == "it":
            screenshot(page, f"{name}-it")
    page.select_option("#language", "en")


def test_the_dark_theme_follows_the_system(browser, ready):
    context = browser.new_context(
        ignore_https_errors=True, color_scheme="dark", viewport={"width": 1280, "height": 800}
    )
    try:
        page = context.new_page()
        login(page, ready)
        page.goto(f"{ready.url}#/dashboard?load=main")
        expect(page.locator(".tile[data-variable=p_sys] output")).to_have_text(
            re.compile(r"\d"), timeout=30_000
        )
        background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        red, green, blue = (int(x) for x in re.findall(r"\d+", background)[:3])
        assert red + green + blue < 150, background
        screenshot(page, "dashboard-dark")
    finally:
        context.close()
