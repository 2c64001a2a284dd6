"""The web app in Chromium against a real `emsbox run` that starts with no user at all.

The tests run in order on one fresh device: the first-start wizard, then what a user sees
once it is done (login, logout, the live dashboard, language, a phone screen).
"""

import re

from playwright.sync_api import Page, expect
from ui_support import overflow, screenshot

ADMIN = "admin"
PASSWORD = "a long enough password"


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _login(page: Page, url: str, password: str = PASSWORD) -> None:
    page.goto(url)
    page.fill("#login-name", ADMIN)
    page.fill("#login-password", password)
    page.click("button[type=submit]")


def test_first_start_wizard_creates_the_admin_and_ends_on_a_live_dashboard(page, served):
    page.goto(served.url)
    expect(page.locator("h1.brand")).to_have_text("First-start setup")
    expect(page.locator(".step")).to_have_text("Step 1 of 7")

    # Step 1: the account. A common password is refused next to its field, by the device.
    page.fill("#admin\\.name", ADMIN)
    page.fill("#admin\\.password", "password")
    page.fill("#admin\\.confirm", "password")
    page.click("button[type=submit]")
    expect(page.locator("#admin\\.password-error")).to_contain_text("commonly used passwords")
    expect(page.locator(".step")).to_have_text("Step 1 of 7")
    page.fill("#admin\\.password", PASSWORD)
    page.fill("#admin\\.confirm", PASSWORD + "x")
    page.click("button[type=submit]")
    expect(page.locator("#admin\\.confirm-error")).to_have_text("The two passwords differ.")
    page.fill("#admin\\.password", PASSWORD)
    page.fill("#admin\\.confirm", PASSWORD)
    page.click("button[type=submit]")

    # Step 2: the site.
    expect(page.locator(".step")).to_have_text("Step 2 of 7")
    page.fill("#site\\.name", "Rooftop plant")
    page.select_option("#site\\.timezone", "Europe/Rome")
    page.click("button[type=submit]")

    # Step 3: the main meter; an out-of-range voltage is refused with the model's reason.
    expect(page.locator(".step")).to_have_text("Step 3 of 7")
    page.select_option("#meter\\.main\\.wiring", "3P4W")
    page.fill("#meter\\.main\\.nominal_voltage_v", "600")
    page.click("button[type=submit]")
    expect(page.locator("#meter\\.main\\.nominal_voltage_v-error")).to_be_visible()
    page.fill("#meter\\.main\\.nominal_voltage_v", "230")
    page.click("button[type=submit]")

    # Step 4: an extension load, with a way back that keeps what was typed.
    expect(page.locator(".step")).to_have_text("Step 4 of 7")
    expect(page.locator(".empty")).to_be_visible()
    page.click(".add-load")
    page.fill("#meter\\.loads\\[0\\]\\.name", "hvac")
    page.select_option("#meter\\.loads\\[0\\]\\.module", "5A")
    page.fill("#meter\\.loads\\[0\\]\\.ct_primary_a", "-5")
    page.click("button[type=submit]")
    expect(page.locator("#meter\\.loads\\[0\\]\\.ct_primary_a-error")).to_be_visible()
    screenshot(page, "wizard-loads")
    page.fill("#meter\\.loads\\[0\\]\\.ct_primary_a", "200")
    page.click("text=Back")
    expect(page.locator(".step")).to_have_text("Step 3 of 7")
    page.click("button[type=submit]")
    expect(page.locator("#meter\\.loads\\[0\\]\\.name")).to_have_value("hvac")
    page.click("button[type=submit]")

    # Step 5: the logging interval.
    expect(page.locator(".step")).to_have_text("Step 5 of 7")
    page.select_option("#store\\.logging_interval_s", "900")
    page.click("button[type=submit]")

    # Step 6: the protocol servers, all off until turned on; Modbus TCP on any free port.
    expect(page.locator(".step")).to_have_text("Step 6 of 7")
    expect(page.locator("#modbus\\.tcp_enabled")).not_to_be_checked()
    expect(page.locator("#modbus\\.tcp_port")).to_be_hidden()
    page.check("#modbus\\.tcp_enabled")
    page.fill("#modbus\\.tcp_port", "0")
    # BACnet/IP on any free UDP port; an instance out of range is refused next to its field.
    expect(page.locator("#bacnet\\.enabled")).not_to_be_checked()
    expect(page.locator("#bacnet-details")).to_be_hidden()
    page.check("#bacnet\\.enabled")
    expect(page.locator("#bacnet\\.port")).to_have_value("47808")
    expect(page.locator("#bacnet\\.device_instance")).to_have_value("")
    page.fill("#bacnet\\.port", "0")
    page.fill("#bacnet\\.device_instance", "4194303")
    page.click("button[type=submit]")
    expect(page.locator("#bacnet\\.device_instance-error")).to_contain_text("4194302")
    expect(page.locator(".step")).to_have_text("Step 6 of 7")
    page.fill("#bacnet\\.device_instance", "4194302")
    page.click("button[type=submit]")

    # Step 7: the summary, then finish.
    expect(page.locator(".step")).to_have_text("Step 7 of 7")
    screenshot(page, "wizard-summary")
    expect(page.locator("dl.summary")).to_contain_text("hvac (3P4W, 5A, 200 A)")
    expect(page.locator("dl.summary")).to_contain_text("Europe/Rome")
    expect(page.locator("dl.summary")).to_contain_text("15 min")
    expect(page.locator("dl.summary")).to_contain_text("on, port 0")
    expect(page.locator("dl.summary")).to_contain_text("on, UDP port 0, device instance 4194302")
    page.click("button[type=submit]")

    # A live dashboard of the new site, with the new load (applied without a restart).
    expect(page.locator(".topbar h1")).to_have_text("Rooftop plant", timeout=30_000)
    expect(page.locator(".tab[data-load=hvac]")).to_be_visible(timeout=30_000)
    # The site's dashboard: every load at a glance.
    overview = page.locator(".loads-table tr[data-load=hvac] td[data-variable=p_sys]")
    expect(overview).to_have_text(re.compile(r"\d"), timeout=30_000)
    first = page.locator(".status").inner_text()
    expect(page.locator(".status")).not_to_have_text(first, timeout=10_000)  # it updates
    page.click(".tab[data-load=hvac]")
    expect(page.locator(".tab[data-load=hvac]")).to_have_attribute("aria-pressed", "true")
    power = page.locator(".tile[data-variable=p_sys] output")
    expect(power).to_have_text(re.compile(r"\d"), timeout=30_000)
    expect(page.locator("table.phases td[data-variable=i_l1]")).to_have_text(re.compile(r"\d"))
    assert _number(power.inner_text()) > 0

    setup = page.request.get(f"{served.url}api/v1/setup").json()
    assert setup["needed"] is False and setup["site_name"] == "Rooftop plant"
    gateways = page.request.get(f"{served.url}api/v1/system").json()["gateways"]
    modbus = gateways[0]
    assert modbus["name"] == "Modbus TCP" and modbus["enabled"] and modbus["healthy"], modbus
    (bacnet,) = [g for g in gateways if g["name"] == "BACnet/IP"]
    assert bacnet["enabled"] and bacnet["healthy"], bacnet
    assert "device 4194302" in bacnet["detail"], bacnet
    config = page.request.get(f"{served.url}api/v1/config").json()["bacnet"]
    assert (config["enabled"], config["port"], config["device_instance"]) == (True, 0, 4194302)


def test_the_wizard_cannot_run_again_and_a_new_visitor_gets_the_login(page, served):
    page.goto(served.url)
    expect(page.locator("h1")).to_have_text("Log in")
    expect(page.locator(".card p.muted")).to_have_text("Rooftop plant")
    again = page.request.post(
        f"{served.url}api/v1/setup",
        data={"admin": {"name": "mallory", "password": "another long password"}},
    )
    assert again.status == 409
    assert page.request.get(f"{served.url}api/v1/loads").status == 401


def test_a_wrong_password_is_refused_then_login_and_logout(page, served):
    _login(page, served.url, "not the password")
    expect(page.locator(".form-error")).to_have_text("Wrong user name or password.")
    page.fill("#login-password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".topbar h1")).to_have_text("Rooftop plant")
    page.reload()  # the session survives a reload
    expect(page.locator(".topbar h1")).to_have_text("Rooftop plant")
    page.click("#logout")
    expect(page.locator("h1")).to_have_text("Log in")
    assert page.request.get(f"{served.url}api/v1/loads").status == 401


def test_the_dashboard_fits_a_phone_screen(phone_page, served):
    _login(phone_page, served.url)
    phone_page.click(".tab[data-load=main]")
    expect(phone_page.locator(".tile[data-variable=p_sys] output")).to_have_text(
        re.compile(r"\d"), timeout=30_000
    )
    wider = overflow(phone_page)
    assert wider <= 0, f"the page is {wider} px wider than the phone's screen"


def test_each_user_chooses_the_language_and_it_is_remembered(page, served):
    _login(page, served.url)
    expect(page.locator("#logout")).to_have_text("Log out")
    page.select_option("#language", "it")
    expect(page.locator("#logout")).to_have_text("Esci")
    page.click(".tab[data-load=main]")
    expect(page.locator(".tile[data-variable=p_sys] .tile-label")).to_have_text("Potenza attiva")
    page.reload()
    expect(page.locator("#logout")).to_have_text("Esci")
    page.select_option("#language", "en")
    expect(page.locator("#logout")).to_have_text("Log out")
