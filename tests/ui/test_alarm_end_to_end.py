"""The controller end to end in Chromium against a real `emsbox run`: an installer sets up
e-mail to a real local SMTP server and the digital output's alarm function in the settings,
adds an alarm in Settings → Alarms that the simulated load certainly raises, and then sees it
raised on the Alarms page, receives its e-mail, and sees the output switched on in Diagnostics;
once acknowledged and its condition gone, the alarm clears and the output goes off. (The
clearing is mailed a minute after the raise at the earliest, as a flapping alarm's events are
folded: tests/gateways/test_email_delivery.py covers that.)"""

import time

from playwright.sync_api import expect
from ui_support import PageProblems, esc, login, screenshot

from emsbox.testing.smtp import MailServer

NAME = "Main load importing"


def mail_titled(server: MailServer, subject: str):
    """The first message whose subject starts with ``subject`` (other alarms may mail too)."""
    deadline = time.monotonic() + 20
    while True:
        found = [m for m in server.received if m.message["Subject"].startswith(subject)]
        if found:
            return found[0]
        assert time.monotonic() < deadline, [m.message["Subject"] for m in server.received]
        time.sleep(0.05)


def saved(page) -> None:
    page.click("#settings-save")
    expect(page.locator("#settings-banner")).to_have_text("Saved. The new settings are in use.")


def test_an_alarm_set_up_in_the_web_app_fires_mails_and_switches_the_output(page, ready):
    server = MailServer().start()
    try:
        problems = PageProblems(page)
        login(page, ready)

        page.goto(f"{ready.url}#/settings?section=email")
        page.check(esc("email.enabled"))
        page.fill(esc("email.host"), "127.0.0.1")
        page.fill(esc("email.port"), str(server.port))
        page.select_option(esc("email.security"), "none")
        page.fill(esc("email.sender"), "emsbox@example.com")
        page.fill(esc("email.recipients"), "energy.manager@example.com")
        saved(page)

        page.goto(f"{ready.url}#/settings?section=io")
        page.select_option(esc("io.output_function"), "alarm")
        saved(page)

        # Any power is above -1 GW: raised at the first reading after it is saved.
        page.goto(f"{ready.url}#/settings?section=alarms")
        rules = page.locator("[data-list='alarms.rules']")
        rules.click()
        index = page.locator("[id^='alarms.rules['][id$='].name']").count() - 1
        rule = f"alarms.rules[{index}]"
        page.fill(esc(f"{rule}.name"), NAME)
        page.fill(esc(f"{rule}.variable"), "p_sys")
        page.fill(esc(f"{rule}.high"), "-1000000000")
        page.check(esc(f"{rule}.output"))
        page.check(esc(f"{rule}.latching"))
        saved(page)

        page.click("nav.mainnav a[data-page=alarms]")
        alarm = page.locator(f".alarm-item[data-alarm='{NAME}']")
        expect(alarm.locator(".alarm-state")).to_have_text("Raised, not acknowledged")

        mail = mail_titled(server, f"[emsbox] Alarm raised: {NAME}")
        assert mail.recipients == ["energy.manager@example.com"]
        assert "p_sys" in mail.body()

        page.goto(f"{ready.url}#/diagnostics")
        expect(page.locator("#io-output-function")).to_have_text("Alarm")
        expect(page.locator("#io-output-state")).to_have_text("on")
        screenshot(page, "alarm-end-to-end-output-on")

        # The condition gone (no power is above 1 GW) and acknowledged: cleared, output off.
        page.goto(f"{ready.url}#/settings?section=alarms")
        page.fill(esc(f"{rule}.high"), "1000000000")
        saved(page)
        page.click("nav.mainnav a[data-page=alarms]")
        page.get_by_role("button", name=f"Acknowledge {NAME}").click()
        expect(alarm.locator(".alarm-state")).to_have_text("Normal")
        page.goto(f"{ready.url}#/diagnostics")
        expect(page.locator("#io-output-state")).to_have_text("off")
        problems.assert_none()
    finally:
        server.stop()
