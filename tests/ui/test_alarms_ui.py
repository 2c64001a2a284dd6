"""The Alarms page and the menu's alarm badge in Chromium against a real `emsbox run`.

An alarm certainly raised on the simulator (the main load's voltage above 1 V, latching, no
delay) is configured through PUT /api/v1/config. The menu's badge counts it on any page; the
Alarms page shows it raised with its rule in words, since when and the latest value with its
unit, beside the default alarm, normal. The admin acknowledges it with its button: the page
and the badge show it acknowledged (a latching alarm whose condition holds stays raised), and
once its rule is changed so that the condition is gone it clears; the history lists cleared,
acknowledged (by the admin) and raised, newest first, as GET /api/v1/alarms/history does. A
viewer acknowledges an alarm from the keyboard, and the Diagnostics page lists raised alarms
with its faults. The page in Italian, on a phone (where the top bar also leads to the alarms)
and in the dark theme. An alarm added in Settings → Alarms, with the loads and variables
offered as they are typed, is saved and watched.

The tests run in order on one device.
"""

import re

import pytest
from playwright.sync_api import Browser, Page, expect
from ui_support import (
    ACTION_TIMEOUT_MS,
    ADMIN,
    PageProblems,
    client,
    esc,
    login,
    overflow,
    screenshot,
)

VIEWER = "vera"
VIEWER_PASSWORD = "vera has a long password"
DEFAULT = "Supply voltage out of range"
# Raised as soon as the main load has a reading: its voltage is well above 1 V.
VOLTAGE = {
    "name": "Voltage present",
    "variable": "v_ln_sys",
    "condition": "above",
    "high": 1.0,
    "on_delay_s": 0.0,
    "latching": True,
}
# Raised too: any power is above -1 GW; not latching.
POWER = {"name": "Power measured", "variable": "p_sys", "condition": "above", "high": -1e9}


def set_rules(served, *rules: dict, system: bool = False) -> None:
    """The default alarm and ``rules``, through PUT /api/v1/config as the admin; the built-in
    alarms only with ``system``."""
    with client(served) as admin:
        config = admin.get("/config").json()
        default = [r for r in config["alarms"]["rules"] if r["name"] == DEFAULT]
        assert default, config["alarms"]
        config["alarms"]["rules"] = [*default, *rules]
        config["alarms"]["system"] = system
        r = admin.put("/config", json=config)
        assert r.status_code == 200, r.text


def item(page: Page, name: str):
    return page.locator(f".alarm-item[data-alarm='{name}']")


def events_of(page: Page, name: str) -> list[str]:
    """The events of alarm ``name`` in the page's history table, as listed."""
    rows = page.locator(f"#alarms-events tbody tr[data-alarm='{name}']")
    return rows.evaluate_all("rows => rows.map(r => r.dataset.event)")


def test_an_alarm_is_raised_acknowledged_and_cleared(page, ready):
    set_rules(ready, VOLTAGE)
    problems = PageProblems(page)
    login(page, ready)

    # The badge shows it from any page: here the dashboard.
    badge = page.locator("nav.mainnav a[data-page=alarms] .nav-badge")
    expect(badge).to_be_visible()
    expect(badge).to_have_attribute("data-unacknowledged", "1")
    expect(badge.locator("[aria-hidden=true]")).to_have_text("1")
    expect(badge).to_contain_text("1 not acknowledged")  # for screen readers
    expect(badge).not_to_have_class(re.compile(r"\backnowledged\b"))
    page.click("nav.mainnav a[data-page=alarms]")

    raised = item(page, VOLTAGE["name"])
    expect(raised).to_have_attribute("data-active", "true")
    expect(raised).to_have_attribute("data-acknowledged", "false")
    expect(raised.locator(".alarm-rule")).to_have_text("main · Voltage L-N (v_ln_sys) above 1 V")
    expect(raised.locator(".alarm-state")).to_have_text("Raised, not acknowledged")
    expect(raised.locator(".alarm-value")).to_have_text(re.compile(r"^\d{3}\.\d V$"))
    expect(raised.locator(".alarm-since")).to_have_text(re.compile(r"\d{2}:\d{2}:\d{2}"))
    expect(raised.locator(".alarm-tag:not(.alarm-system)")).to_have_text("latching")
    normal = item(page, DEFAULT)
    expect(normal.locator(".alarm-rule")).to_have_text(
        "main · Voltage L-N (v_ln_sys) outside 207–253 V"
    )
    expect(normal.locator(".alarm-state")).to_have_text("Normal")
    expect(normal.locator(".alarm-since")).to_be_hidden()
    expect(normal.locator(".alarm-ack")).to_be_hidden()
    expect(normal.locator(".alarm-tag:not(.alarm-system)")).to_be_hidden()
    expect(page.locator("#alarms-summary")).to_have_text("Raised: 1 of 2 · not acknowledged: 1")
    expect(page.locator(".alarm-item")).to_have_count(2)
    expect(page.locator("#alarms-events tbody tr").first).to_have_attribute("data-event", "raised")
    assert events_of(page, VOLTAGE["name"]) == ["raised"]
    # The page shows what the API says.
    state = {a["name"]: a for a in page.request.get(f"{ready.url}api/v1/alarms").json()}
    assert state[VOLTAGE["name"]]["active"] and not state[VOLTAGE["name"]]["acknowledged"]
    assert not state[DEFAULT]["active"]
    screenshot(page, "alarms-raised")

    # Acknowledged with its button: still raised (latching, and its condition holds).
    button = page.get_by_role("button", name=f"Acknowledge {VOLTAGE['name']}")
    expect(button).to_have_text("Acknowledge")
    button.click()
    expect(page.locator("#alarms-message")).to_have_text("Voltage present acknowledged.")
    expect(raised).to_have_attribute("data-acknowledged", "true")
    expect(raised).to_have_attribute("data-active", "true")
    expect(raised.locator(".alarm-state")).to_have_text("Raised, acknowledged")
    expect(raised.locator(".alarm-ack")).to_be_hidden()
    expect(page.locator("#alarms-summary")).to_have_text("Raised: 1 of 2 · not acknowledged: 0")
    # The badge: nothing left to acknowledge, one alarm still raised, shown quieter.
    expect(badge).to_have_attribute("data-unacknowledged", "0")
    expect(badge).to_have_class(re.compile(r"\backnowledged\b"))
    expect(badge).to_contain_text("1 raised, acknowledged")
    expect(page.locator("#alarms-events tbody tr").first).to_have_attribute(
        "data-event", "acknowledged"
    )
    expect(page.locator("#alarms-events tbody tr").first.locator(".by")).to_have_text(ADMIN)
    assert events_of(page, VOLTAGE["name"]) == ["acknowledged", "raised"]
    screenshot(page, "alarms-acknowledged")

    # Its condition gone (a threshold no voltage reaches): it clears, and the badge goes.
    set_rules(ready, VOLTAGE | {"high": 1000.0})
    expect(raised).to_have_attribute("data-active", "false")
    expect(raised.locator(".alarm-state")).to_have_text("Normal")
    expect(raised.locator(".alarm-rule")).to_have_text(
        "main · Voltage L-N (v_ln_sys) above 1,000 V"
    )
    expect(page.locator("#alarms-summary")).to_have_text("No alarm is raised (2 watched).")
    expect(badge).to_be_hidden()
    expect(page.locator("#alarms-events tbody tr").first).to_have_attribute("data-event", "cleared")
    assert events_of(page, VOLTAGE["name"]) == ["cleared", "acknowledged", "raised"]
    history = page.request.get(f"{ready.url}api/v1/alarms/history?alarm={VOLTAGE['name']}").json()
    assert [(e["event"], e["by"]) for e in history] == [
        ("cleared", None),
        ("acknowledged", f"session:{ADMIN}"),  # shown as the user's name
        ("raised", None),
    ]
    rows = page.locator(f"#alarms-events tbody tr[data-alarm='{VOLTAGE['name']}']")
    expect(rows.nth(1).locator(".by")).to_have_text(ADMIN)
    expect(rows.nth(2).locator(".value")).to_have_text(re.compile(r"^\d{3}\.\d V$"))
    problems.assert_none()


def test_a_viewer_acknowledges_an_alarm_and_diagnostics_lists_it(page, ready):
    with client(ready) as admin:
        r = admin.post(
            "/users", json={"name": VIEWER, "password": VIEWER_PASSWORD, "role": "viewer"}
        )
        assert r.status_code == 201, r.text
    set_rules(ready, POWER)
    problems = PageProblems(page)
    login(page, ready, VIEWER, VIEWER_PASSWORD)
    badge = page.locator("#alarm-badge")
    expect(badge).to_have_attribute("data-unacknowledged", "1")

    # Diagnostics lists the raised alarm with the faults, and leads to the Alarms page.
    page.goto(f"{ready.url}#/diagnostics")
    listed = page.locator(f".diag-faults .alarm-raised[data-alarm='{POWER['name']}']")
    expect(listed).to_contain_text(
        "Alarm raised, not acknowledged: Power measured, main · Active power (p_sys) above"
    )
    expect(page.locator(".diag-faults")).to_contain_text("No active faults.")
    screenshot(page, "diagnostics-alarm")
    listed.locator("a").click()

    raised = item(page, POWER["name"])
    expect(raised.locator(".alarm-state")).to_have_text("Raised, not acknowledged")
    expect(raised.locator(".alarm-value")).to_have_text(re.compile(r"^-?\d[\d,]*\.\d\d kW$"))
    expect(page.locator("#alarms-settings-link")).to_have_count(0)  # no settings for a viewer
    # From the keyboard: the focus stays on the alarm once its button has gone.
    page.wait_for_timeout(2500)  # after a refresh or two, the button is still the same
    button = raised.locator(".alarm-ack")
    button.focus()
    expect(button).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#alarms-message")).to_have_text("Power measured acknowledged.")
    expect(raised).to_have_attribute("data-acknowledged", "true")
    expect(raised).to_be_focused()
    expect(badge).to_have_attribute("data-unacknowledged", "0")
    rows = page.locator(f"#alarms-events tbody tr[data-alarm='{POWER['name']}']")
    expect(rows.first).to_have_attribute("data-event", "acknowledged")
    expect(rows.first.locator(".by")).to_have_text(VIEWER)

    # Once more: nothing left to acknowledge. An unknown alarm: 404.
    url = f"{ready.url}api/v1/alarms"
    again = page.request.post(f"{url}/{POWER['name']}/ack")
    assert again.ok and again.json()["acknowledged"] is False
    assert page.request.post(f"{url}/no such alarm/ack").status == 404
    page.goto(f"{ready.url}#/diagnostics")
    expect(listed).to_contain_text("Alarm raised: Power measured")
    problems.assert_none()


def test_the_page_in_italian(page, ready):
    set_rules(ready, POWER, VOLTAGE)  # Voltage present is raised again
    problems = PageProblems(page)
    login(page, ready)
    page.select_option("#language", "it")
    expect(page.locator("html")).to_have_attribute("lang", "it")
    try:
        page.goto(f"{ready.url}#/alarms")
        expect(page.locator("nav.mainnav a[data-page=alarms]")).to_contain_text("Allarmi")
        raised = item(page, VOLTAGE["name"])
        expect(raised.locator(".alarm-state")).to_have_text("Attivo, da riconoscere")
        expect(raised.locator(".alarm-rule")).to_have_text(
            "main · Tensione L-N (v_ln_sys) sopra 1 V"
        )
        expect(item(page, DEFAULT).locator(".alarm-rule")).to_have_text(
            "main · Tensione L-N (v_ln_sys) fuori da 207–253 V"
        )
        expect(raised.locator(".alarm-ack")).to_have_text("Riconosci")
        expect(page.locator("#alarm-badge")).to_contain_text("1 da riconoscere")
        expect(page.locator("#alarms-events thead")).to_contain_text("Riconosciuto da")
        screenshot(page, "alarms-it")
    finally:
        page.select_option("#language", "en")
        expect(page.locator("html")).to_have_attribute("lang", "en")
    problems.assert_none()


@pytest.mark.parametrize("look", ["phone", "dark"])
def test_the_page_on_a_phone_and_in_the_dark(look, browser: Browser, ready):
    options = (
        {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
        if look == "phone"
        else {"viewport": {"width": 1280, "height": 800}, "color_scheme": "dark"}
    )
    context = browser.new_context(ignore_https_errors=True, locale="en-US", **options)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        page = context.new_page()
        problems = PageProblems(page)
        login(page, ready)
        # On a phone the menu scrolls sideways, its Alarms entry maybe out of sight: the top
        # bar says there are alarms to acknowledge, and leads to them. On a wide screen the
        # menu's badge is enough.
        alert = page.locator(".topbar #alarm-alert")
        expect(page.locator("#alarm-badge")).to_have_attribute("data-unacknowledged", "1")
        if look == "phone":
            expect(alert).to_be_visible()
            expect(alert).to_have_text("Alarms to acknowledge: 1")
            screenshot(page, "alarms-alert-phone")
            alert.click()
            expect(page).to_have_url(re.compile(r"#/alarms$"))
        else:
            expect(alert).to_be_hidden()
            page.goto(f"{ready.url}#/alarms")
        expect(page.locator("#alarm-badge")).to_be_visible()
        raised = item(page, VOLTAGE["name"])
        expect(raised.locator(".alarm-ack")).to_be_visible()
        expect(page.locator("#alarms-events tbody tr").first).to_be_visible()
        screenshot(page, f"alarms-raised-{look}")
        wider = overflow(page)
        assert wider <= 0, f"the alarms page is {wider} px wider than the screen"
        if look == "dark":
            background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
            red, green, blue = (int(x) for x in re.findall(r"\d+", background)[:3])
            assert red + green + blue < 150, background
        problems.assert_none()
    finally:
        context.close()


def test_built_in_alarms_are_listed_with_what_they_watch(page, ready):
    set_rules(ready, system=True)
    login(page, ready)
    page.click("nav.mainnav a[data-page=alarms]")
    clock = item(page, "System: clock jump")
    expect(clock.locator(".alarm-system")).to_have_text("built-in")
    expect(clock.locator(".alarm-rule")).to_have_text("Working normally.")
    expect(clock.locator(".alarm-tag:not(.alarm-system)")).to_have_text("latching")
    expect(clock.locator(".alarm-value")).to_be_hidden()
    expect(clock.locator(".alarm-state")).to_have_text("Normal")
    storage = item(page, "System: storage almost full")
    expect(storage.locator(".alarm-rule")).to_have_text(re.compile(r"^\d+ MB free in /"))
    expect(item(page, "System: no readings from main")).to_be_visible()
    expect(item(page, DEFAULT).locator(".alarm-system")).to_be_hidden()
    set_rules(ready)
    expect(clock).to_have_count(0)


def test_an_installer_adds_an_alarm_in_the_settings(page, ready):
    set_rules(ready)  # the default alarm alone
    problems = PageProblems(page)
    login(page, ready)
    page.goto(f"{ready.url}#/alarms")
    page.click("#alarms-settings-link")
    expect(page.locator("#settings-title")).to_have_text("Alarms")
    page.click("[data-list='alarms.rules']")
    name = page.locator(esc("alarms.rules[1].name"))
    expect(name).to_be_focused()
    name.fill("Frequency present")
    # The loads and the variables an alarm can watch are offered as they are typed.
    loads = page.locator(f"{esc('alarms.rules[1].load-choices')} option")
    assert loads.evaluate_all("os => os.map(o => o.value)") == ["main", "hvac"]
    variables = page.locator(f"{esc('alarms.rules[1].variable-choices')} option")
    offered = variables.evaluate_all("os => os.map(o => o.value)")
    assert {"v_ln_sys", "p_sys", "freq", "kwh_imp"} <= set(offered)
    assert "partial_running" not in offered  # a state, not a value
    page.fill(esc("alarms.rules[1].load"), "hvac")
    page.fill(esc("alarms.rules[1].variable"), "freq")
    # A new rule's condition is the first one its list shows: above.
    expect(page.locator(esc("alarms.rules[1].condition"))).to_have_value("above")
    page.fill(esc("alarms.rules[1].high"), "10")
    page.click("#settings-save")
    expect(page.locator("#settings-banner")).to_have_text("Saved. The new settings are in use.")
    with client(ready) as admin:
        rules = admin.get("/config").json()["alarms"]["rules"]
    assert [(r["name"], r["load"], r["variable"], r["condition"], r["high"]) for r in rules] == [
        (DEFAULT, "", "v_ln_sys", "outside", 253.0),
        ("Frequency present", "hvac", "freq", "above", 10.0),
    ]
    page.click("nav.mainnav a[data-page=alarms]")
    added = item(page, "Frequency present")
    expect(added.locator(".alarm-rule")).to_have_text("hvac · Frequency (freq) above 10 Hz")
    expect(added.locator(".alarm-state")).to_have_text("Raised, not acknowledged")
    expect(added.locator(".alarm-value")).to_have_text(re.compile(r"^\d{2}\.\d{2} Hz$"))
    problems.assert_none()
