"""The e-mail settings in Chromium: set up from the form, saved, and the test button's answers
(e-mail off, sent to a real SMTP server)."""

import re

from playwright.sync_api import expect
from ui_support import PageProblems, esc, login, screenshot

from emsbox.testing.smtp import MailServer


def test_the_test_button_says_off_then_sends_with_the_saved_settings(page, ready):
    server = MailServer().start()
    try:
        login(page, ready)
        page.goto(f"{ready.url}#/settings?section=email")
        status = page.locator("#email-test-status")
        page.click("#email-test")
        expect(status).to_have_text(
            "E-mail is off in the saved settings: turn it on and save first."
        )
        expect(status).to_have_class(re.compile("field-error"))
        problems = PageProblems(page)  # from here on: the 409 above was expected

        page.check(esc("email.enabled"))
        page.fill(esc("email.host"), "127.0.0.1")
        page.fill(esc("email.port"), str(server.port))
        page.select_option(esc("email.security"), "none")
        page.fill(esc("email.sender"), "emsbox@example.com")
        page.fill(esc("email.recipients"), "ops@example.com, boss@example.com")
        page.click("#settings-save")
        expect(page.locator("#settings-dirty")).to_have_text("No unsaved changes")

        page.click("#email-test")
        expect(status).to_have_text(
            "Sent to ops@example.com, boss@example.com: the server accepted it."
        )
        expect(status).not_to_have_class(re.compile("field-error"))
        (mail,) = server.wait_for(1)
        assert mail.message["Subject"] == "[emsbox] Test message (Test site)"
        screenshot(page, "settings-email-test-sent")
        problems.assert_none()
    finally:
        server.stop()
