"""The settings pages in Chromium against a real `emsbox run`: from the schema, saved for real."""

import re
import subprocess
from pathlib import Path

from playwright.sync_api import Page, expect
from ui_support import (
    PageProblems,
    Served,
    client,
    complete_setup,
    esc,
    login,
    screenshot,
)

from emsbox import config_doc
from emsbox.config import Config
from emsbox.web.api.config_routes import ADMIN_SECTIONS

SECTIONS = list(Config.model_fields)
# The settings' own inputs (the file choosers beside certificate settings are no setting).
INPUTS = (
    "form.settings-form input:not([type=file]), form.settings-form select,"
    " form.settings-form textarea"
)


def leaf_paths() -> set[str]:
    """Key path of every setting (not group) of the configuration; list items as ``[0]``."""
    return {c.path.replace("[]", "[0]") for c in config_doc.settings() if c.group is None}


def add_user(served: Served, name: str, role: str) -> str:
    """Create a user through the API as the admin; returns its password."""
    password = f"{name} has a long password"
    with client(served) as admin:
        r = admin.post("/users", json={"name": name, "password": password, "role": role})
        assert r.status_code in (200, 201), r.text
    return password


def open_section(page: Page, served: Served, section: str) -> None:
    page.goto(f"{served.url}#/settings?section={section}")
    expect(page.locator(f".settings-nav a[data-section={section}]")).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.locator(INPUTS).first).to_be_attached()


def test_every_section_has_a_field_for_every_setting(page, ready):
    login(page, ready)
    problems = PageProblems(page)  # from here on: the login page's 401 for /me is expected
    expect(page.locator("nav.mainnav a[data-page=settings]")).to_be_visible()
    page.click("nav.mainnav a[data-page=settings]")
    expect(page.locator(".settings-nav a")).to_have_count(len(SECTIONS))
    expected = leaf_paths()
    seen: set[str] = set()
    for section in SECTIONS:
        open_section(page, ready, section)
        # A list that is empty by default gets an item, so that its items' fields show.
        for path in page.eval_on_selector_all("[data-list]", "els => els.map(e => e.dataset.list)"):
            if not page.locator(f"[id^='{path}[0]']").count():
                page.click(f"[data-list='{path}']")
        ids = page.eval_on_selector_all(INPUTS, "els => els.map(e => e.id)")
        assert all(ids), f"an input without id in {section}"
        assert len(ids) == len(set(ids)), f"duplicate ids in {section}"
        # Every input is labelled and described by its help and error elements.
        for path in ids:
            field = page.locator(esc(path))
            assert page.locator(f"label[for='{path}']").count() == 1, path
            described = field.get_attribute("aria-describedby").split()
            assert described == [f"{path}-help", f"{path}-error"], path
            for ref in described:
                assert page.locator(esc(ref)).count() == 1, ref
        mine = {re.sub(r"\[\d+\]", "[0]", i) for i in ids}
        assert mine == {p for p in expected if p.split(".")[0] == section}, section
        seen |= mine
        screenshot(page, f"settings-{section}")
    assert seen == expected
    problems.assert_none()


def test_every_section_fits_a_phone(phone_page, ready):
    login(phone_page, ready)
    problems = PageProblems(phone_page)
    for section in SECTIONS:
        open_section(phone_page, ready, section)
        overflow = phone_page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{section} scrolls sideways by {overflow} px"
        screenshot(phone_page, f"settings-{section}-phone")
    problems.assert_none()


def test_wrong_values_are_refused_next_to_their_fields_and_nothing_is_saved(page, ready):
    with client(ready) as admin:
        before = admin.get("/config").json()
    login(page, ready)
    problems = PageProblems(page)
    open_section(page, ready, "meter")
    expect(page.locator("#settings-save")).to_be_disabled()
    voltage = page.locator(esc("meter.main.nominal_voltage_v"))
    ct = page.locator(esc("meter.loads[0].ct_primary_a"))
    expect(ct).to_have_value("200")
    voltage.fill("600")
    ct.fill("-5")
    expect(page.locator("#settings-dirty")).to_have_text("Unsaved changes")
    expect(page.locator(".settings-nav a[data-section=meter] .nav-mark.unsaved")).to_be_visible()
    page.click("#settings-save")

    expect(page.locator(esc("meter.main.nominal_voltage_v-error"))).to_contain_text(
        "less than or equal to 500"
    )
    expect(page.locator(esc("meter.loads[0].ct_primary_a-error"))).to_contain_text("greater than 0")
    expect(voltage).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#settings-summary")).to_contain_text("Problems to fix: 2")
    screenshot(page, "settings-errors")
    with client(ready) as admin:
        assert admin.get("/config").json() == before

    # Fixing a field clears its error; Discard brings back what is saved.
    voltage.fill("230")
    expect(page.locator(esc("meter.main.nominal_voltage_v-error"))).to_be_hidden()
    page.click("#settings-discard")
    expect(ct).to_have_value("200")
    expect(page.locator(esc("meter.loads[0].ct_primary_a-error"))).to_be_hidden()
    expect(page.locator("#settings-save")).to_be_disabled()
    expect(page.locator("#settings-dirty")).to_have_text("No unsaved changes")

    # Rows can be added and removed; a model-level problem (a duplicate load name) is shown
    # with its list item, and a problem of another section in the summary.
    page.click("[data-list='meter.loads']")
    expect(page.locator(esc("meter.loads[1].name"))).to_be_focused()
    page.fill(esc("meter.loads[1].name"), "hvac")
    page.click(".settings-nav a[data-section=site]")
    page.fill(esc("site.name"), "")
    page.click("#settings-save")
    expect(page.locator(esc("site.name-error"))).to_be_visible()
    expect(page.locator("#settings-summary a[href$='section=meter']")).to_be_visible()
    expect(page.locator(".settings-nav a[data-section=meter] .nav-mark.error")).to_be_visible()
    page.click("#settings-summary a[href$='section=meter']")
    expect(page.locator("#meter-error")).to_contain_text("load names must be unique: hvac")
    page.click(".settings-item:nth-of-type(2) .remove-row")
    expect(page.locator(esc("meter.loads[1].name"))).to_have_count(0)
    page.click("#settings-discard")
    with client(ready) as admin:
        assert admin.get("/config").json() == before
    # The browser reports each refused save (422) on the console; nothing else may appear.
    problems.errors = [e for e in problems.errors if "status of 422" not in e]
    problems.assert_none()


def test_a_valid_change_is_saved_and_kept_across_a_restart(page, tmp_path):
    server = Served(tmp_path / "data")
    try:
        complete_setup(server, loads=[{"name": "hvac", "module": "5A", "ct_primary_a": 200}])
        login(page, server)
        problems = PageProblems(page)
        open_section(page, server, "site")
        page.fill(esc("site.name"), "Plant north")
        open_section(page, server, "meter")  # the edit is kept while moving between sections
        page.fill(esc("meter.loads[0].ct_primary_a"), "250")
        page.click("[data-list='meter.loads']")
        page.fill(esc("meter.loads[1].name"), "pump")
        page.select_option(esc("meter.loads[1].module"), "5A")
        page.click("#settings-save")
        expect(page.locator("#settings-banner")).to_have_text("Saved. The new settings are in use.")
        expect(page.locator("#settings-dirty")).to_have_text("No unsaved changes")
        with client(server) as admin:
            config = admin.get("/config").json()
        assert config["site"]["name"] == "Plant north"
        assert config["meter"]["loads"][0]["ct_primary_a"] == 250
        assert config["meter"]["loads"][1]["name"] == "pump"
        assert config["meter"]["loads"][1]["module"] == "5A"

        # A data logger setting waits for a restart, and the page says so.
        open_section(page, server, "store")
        page.fill(esc("store.commit_interval_s"), "10")
        page.click("#settings-save")
        expect(page.locator("#settings-banner")).to_contain_text(
            "Restart the service to apply the changes to: Data logger."
        )
        problems.assert_none()
        assert server.stop() == 0
    finally:
        server.stop()

    again = Served(tmp_path / "data")
    try:
        page.context.clear_cookies()  # cookies ignore ports: log in again for real
        login(page, again)
        expect(page.locator(".topbar h1")).to_have_text("Plant north")
        open_section(page, again, "meter")
        expect(page.locator(esc("meter.loads[0].ct_primary_a"))).to_have_value("250")
        expect(page.locator(esc("meter.loads[1].name"))).to_have_value("pump")
        open_section(page, again, "store")
        expect(page.locator(esc("store.commit_interval_s"))).to_have_value("10")
        expect(page.locator("#settings-banner")).to_be_hidden()
    finally:
        assert again.stop() == 0


def test_an_installer_reads_admin_sections_without_changing_them(page, ready):
    password = add_user(ready, "installer-one", "installer")
    login(page, ready, "installer-one", password)
    for section in ADMIN_SECTIONS:
        open_section(page, ready, section)
        expect(page.locator("#settings-readonly")).to_be_visible()
        for field in page.locator(INPUTS).all():
            expect(field).to_be_disabled()
        screenshot(page, f"settings-{section}-installer")
    open_section(page, ready, "site")
    expect(page.locator("#settings-readonly")).to_have_count(0)
    expect(page.locator(esc("site.name"))).to_be_enabled()

    # The API refuses what the page does not offer.
    assert "web" in ADMIN_SECTIONS
    with client(ready, "installer-one", password) as installer:
        config = installer.get("/config").json()
        changed = {**config, "web": {**config["web"], "session_hours": 3.0}}
        r = installer.put("/config", json=changed)
        assert r.status_code == 403, r.text
        assert "admin" in r.json()["detail"]
        assert installer.get("/config").json() == config


def test_a_viewer_has_no_settings(page, ready):
    password = add_user(ready, "viewer-one", "viewer")
    login(page, ready, "viewer-one", password)
    expect(page.locator("nav.mainnav a[data-page=dashboard]")).to_be_visible()
    expect(page.locator("nav.mainnav a[data-page=settings]")).to_have_count(0)
    page.goto(f"{ready.url}#/settings?section=site")
    expect(page).to_have_url(re.compile(r"#/dashboard$"))
    assert page.request.get(f"{ready.url}api/v1/config").status == 403
    assert page.request.get(f"{ready.url}api/v1/config/schema").status == 403


def test_modbus_is_turned_on_from_its_section_and_its_maps_download(page, ready):
    login(page, ready)
    problems = PageProblems(page)
    open_section(page, ready, "modbus")
    expect(page.locator(esc("modbus.tcp_enabled"))).not_to_be_checked()
    page.check(esc("modbus.tcp_enabled"))
    page.fill(esc("modbus.bind_address"), "127.0.0.1")
    page.fill(esc("modbus.tcp_port"), "0")
    page.click("#settings-save")
    expect(page.locator("#settings-dirty")).to_have_text("No unsaved changes")
    screenshot(page, "settings-modbus")
    with client(ready) as admin:
        gateway = admin.get("/system").json()["gateways"][0]
    assert gateway["enabled"] and gateway["healthy"], gateway
    port = re.search(r":(\d+),", gateway["detail"]).group(1)
    out = subprocess.run(
        [
            "mbpoll",
            "-m",
            "tcp",
            "-p",
            port,
            "-1",
            "-a",
            "1",
            "-r",
            "40001",
            "-c",
            "2",
            "-t",
            "4:hex",
            "127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert "0x5375" in out.stdout and "0x6E53" in out.stdout, out.stdout + out.stderr
    with page.expect_download() as download:
        page.click("#modbus-maps a[data-map=native]")
    assert download.value.suggested_filename == "emsbox-modbus-native.csv"
    assert "p_sys,float32" in Path(download.value.path()).read_text()
    page.uncheck(esc("modbus.tcp_enabled"))
    page.click("#settings-save")
    expect(page.locator("#settings-dirty")).to_have_text("No unsaved changes")
    problems.assert_none()
