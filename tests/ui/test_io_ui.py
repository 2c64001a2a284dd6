"""The Digital I/O panel of the Diagnostics page in Chromium against a real `emsbox run`.

A viewer sees the input and output without switches. An admin sets the output's function to
remote control in Settings, switches the output on from the panel (and GET /api/v1/io agrees),
closes the simulated input and sees it active; the switch keeps the keyboard focus across the
panel's refreshes. The panel on a phone and in the dark theme. The pulse output's count, and
the device's reason shown when it refuses a switch.

The tests run in order on one device.
"""

import re

import pytest
from playwright.sync_api import Browser, Page, Route, expect
from ui_support import (
    ACTION_TIMEOUT_MS,
    PageProblems,
    client,
    login,
    overflow,
    screenshot,
)

VIEWER = "vera"
VIEWER_PASSWORD = "vera has a long password"


def set_io(served, **changes) -> None:
    """Change io settings through PUT /api/v1/config, as the admin."""
    with client(served) as admin:
        config = admin.get("/config").json()
        config["io"] |= changes
        r = admin.put("/config", json=config)
        assert r.status_code == 200, r.text


def io_state(page: Page, served) -> dict:
    """GET /api/v1/io with the page's session."""
    r = page.request.get(f"{served.url}api/v1/io")
    assert r.ok, r.text()
    return r.json()


def open_panel(page: Page, served) -> None:
    page.goto(f"{served.url}#/diagnostics")
    expect(page.locator("#io-panel .io-parts")).to_be_visible()


def test_a_viewer_sees_the_states_without_switches(page, ready):
    with client(ready) as admin:
        r = admin.post(
            "/users", json={"name": VIEWER, "password": VIEWER_PASSWORD, "role": "viewer"}
        )
        assert r.status_code == 201, r.text
    problems = PageProblems(page)
    login(page, ready, VIEWER, VIEWER_PASSWORD)
    open_panel(page, ready)
    panel = page.locator("#io-panel")
    expect(panel.locator("h2")).to_have_text("Digital I/O")
    expect(page.locator("#io-input-function")).to_have_text("Status only")
    expect(page.locator("#io-input-contact")).to_have_text("open")
    expect(page.locator("#io-input-state")).to_have_text("inactive")
    expect(page.locator("#io-output-function")).to_have_text("Off")
    expect(page.locator("#io-output-state")).to_have_text("off")
    expect(page.locator("#io-output-contact")).to_have_text("open")
    expect(page.locator("#io-backend")).to_have_text("Simulated")
    expect(page.locator("#io-pulses")).to_be_hidden()
    # States only: no switch, no way to settings.
    expect(panel.locator("[role=switch]")).to_have_count(0)
    expect(panel.locator("a")).to_have_count(0)
    # A simulated input closed by someone else shows on the viewer's panel at the next refresh.
    with client(ready) as admin:
        assert admin.put("/io/input", json={"closed": True}).status_code == 200
        try:
            expect(page.locator("#io-input-contact")).to_have_text("closed")
            expect(page.locator("#io-input-state")).to_have_text("active")
            expect(page.locator("#io-input-state")).to_have_attribute("data-active", "true")
        finally:
            assert admin.put("/io/input", json={"closed": False}).status_code == 200
    expect(page.locator("#io-input-state")).to_have_text("inactive")
    expect(panel.locator("[role=switch]")).to_have_count(0)
    screenshot(page, "io-viewer")
    problems.assert_none()


def test_the_output_is_set_to_remote_control_and_switched_from_the_panel(page, ready):
    problems = PageProblems(page)
    login(page, ready)
    open_panel(page, ready)
    output = page.locator("#io-output-switch")
    inp = page.locator("#io-input-switch")
    # The output's function is off: no output switch, but the way to change it.
    expect(page.locator("#io-output-function")).to_have_text("Off")
    expect(output).to_be_hidden()
    expect(inp).to_be_visible()
    page.click("#io-output-hint a")

    expect(page.locator("#settings-title")).to_have_text("Digital I/O")
    page.select_option("#io\\.output_function", "remote")
    page.click("#settings-save")
    expect(page.locator("#settings-banner")).to_have_text("Saved. The new settings are in use.")
    with client(ready) as admin:
        assert admin.get("/config").json()["io"]["output_function"] == "remote"

    open_panel(page, ready)
    expect(page.locator("#io-output-function")).to_have_text("Remote control")
    expect(page.locator("#io-output-hint")).to_be_hidden()
    expect(output).to_be_visible()
    expect(output).to_have_attribute("aria-checked", "false")
    expect(output).to_have_accessible_name("Switch the output on")

    output.click()
    expect(output).to_have_attribute("aria-checked", "true")
    expect(page.locator("#io-output-state")).to_have_text("on")
    expect(page.locator("#io-output-state")).to_have_attribute("data-on", "true")
    expect(page.locator("#io-output-contact")).to_have_text("closed")
    state = io_state(page, ready)
    assert (state["output_function"], state["output_on"], state["output_closed"]) == (
        "remote",
        True,
        True,
    )

    inp.click()
    expect(inp).to_have_attribute("aria-checked", "true")
    expect(page.locator("#io-input-contact")).to_have_text("closed")
    expect(page.locator("#io-input-state")).to_have_text("active")
    state = io_state(page, ready)
    assert (state["input_closed"], state["input_active"]) == (True, True)
    page.wait_for_timeout(1500)  # later refreshes keep both as they are
    expect(output).to_have_attribute("aria-checked", "true")
    expect(inp).to_have_attribute("aria-checked", "true")
    screenshot(page, "io-desktop")

    # From the keyboard, after the panel has refreshed a few times: the switch keeps its focus.
    output.focus()
    page.wait_for_timeout(2500)
    expect(output).to_be_focused()
    page.keyboard.press("Space")
    expect(output).to_have_attribute("aria-checked", "false")
    expect(page.locator("#io-output-state")).to_have_text("off")
    expect(page.locator("#io-output-contact")).to_have_text("open")
    assert io_state(page, ready)["output_on"] is False
    inp.click()
    expect(page.locator("#io-input-state")).to_have_text("inactive")
    assert io_state(page, ready)["input_closed"] is False
    problems.assert_none()


@pytest.mark.parametrize("look", ["phone", "dark"])
def test_the_panel_on_a_phone_and_in_the_dark(look, browser: Browser, ready):
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
        open_panel(page, ready)
        output = page.locator("#io-output-switch")
        output.click()  # the function is still remote control
        expect(page.locator("#io-output-state")).to_have_text("on")
        page.locator("#io-panel").scroll_into_view_if_needed()
        screenshot(page, f"io-{look}")
        wider = overflow(page)
        assert wider <= 0, f"the diagnostics page is {wider} px wider than the screen"
        output.click()
        expect(page.locator("#io-output-state")).to_have_text("off")
        problems.assert_none()
    finally:
        context.close()


def test_the_pulse_output_and_a_refused_switch(page, ready):
    set_io(ready, output_function="pulse", pulses_per_kwh=1000.0, pulse_width_s=0.1)
    login(page, ready)
    open_panel(page, ready)
    expect(page.locator("#io-output-function")).to_have_text("Energy pulses")
    expect(page.locator("#io-pulses")).to_have_text(re.compile(r"^\d[\d,]*$"))
    expect(page.locator("#io-pulses-waiting")).to_have_text(re.compile(r"^\d[\d,]*$"))
    expect(page.locator("#io-max-power")).to_have_text("18.0 kW")  # 3600 / (1000 × 2 × 0.1)
    expect(page.locator("#io-output-switch")).to_be_hidden()
    assert io_state(page, ready)["max_pulse_power_kw"] == pytest.approx(18.0)

    # Settings changed elsewhere while the panel still offered the switch: the panel is told
    # the output is remote-controlled, the device (which knows better) refuses, and says why.
    def claim_remote(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, json=response.json() | {"output_function": "remote"})

    page.route("**/api/v1/io", claim_remote)
    output = page.locator("#io-output-switch")
    expect(output).to_be_visible()
    output.click()
    message = page.locator("#io-message")
    expect(message).to_have_text("Not switched: the digital output's function is pulse, not remote")
    expect(message).to_have_class(re.compile(r"\berror\b"))
    expect(output).to_have_attribute("aria-checked", "false")
    screenshot(page, "io-refused")
    page.unroute("**/api/v1/io")
    expect(output).to_be_hidden()
    # Refused: still the pulse output (whose contact is on during each pulse, so its on/off
    # state says nothing here).
    assert io_state(page, ready)["output_function"] == "pulse"


def test_hardware_that_does_not_work_says_why_in_the_panel(page, ready):
    login(page, ready)
    open_panel(page, ready)
    health = page.locator("#io-backend-health")
    expect(health).to_be_hidden()  # the simulated backend always works
    set_io(ready, backend="gpio", gpio_chip="/dev/gpiochip97", output_function="off")
    try:
        expect(page.locator("#io-backend")).to_have_text("GPIO lines")
        expect(health).to_have_text("/dev/gpiochip97: no such GPIO chip")
        expect(health).to_have_attribute("data-ok", "false")
        expect(page.locator("#io-input-switch")).to_be_hidden()  # the input is real hardware
        screenshot(page, "io-hardware-error")
    finally:
        set_io(ready, backend="simulated")
    expect(page.locator("#io-backend")).to_have_text("Simulated")
    expect(health).to_be_hidden()
