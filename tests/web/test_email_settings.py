"""The e-mail settings through the API: off by default, checked by field, the password never
shown, the test message (sent, refused, off) and the health of the notifier."""

import json

import pytest

from emsbox.config import REDACTED
from emsbox.gateways.email.config import SmtpSecurity
from emsbox.languages import LANGUAGES
from emsbox.testing.mosquitto import free_port
from emsbox.testing.smtp import MailServer

APP_I18N = "src/emsbox/web/static/app/i18n"


def _config(api, role="admin"):
    r = api.client.get("/api/v1/config", headers=api.headers(role))
    assert r.status_code == 200, r.text
    return r.json()


def _put_email(api, role="installer", **email):
    config = json.loads(json.dumps(_config(api)))
    config["email"] |= email
    return api.client.put("/api/v1/config", json=config, headers=api.headers(role))


def _test(api, role="installer"):
    return api.client.post("/api/v1/email/test", headers=api.headers(role))


def _email_part(api):
    system = api.client.get("/api/v1/system", headers=api.headers("viewer")).json()
    return [p for p in system["parts"] if p["name"] == "email"]


@pytest.fixture(scope="module")
def server():
    s = MailServer().start()
    try:
        yield s
    finally:
        s.stop()


def test_every_option_of_the_email_settings_has_a_label_in_every_language():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / APP_I18N
    for code in LANGUAGES:
        text = json.loads((root / code / "settings.json").read_text(encoding="utf-8"))
        for option in SmtpSecurity:
            assert f"settings.option.SmtpSecurity.{option.value}" in text, (code, option)


def test_e_mail_is_off_by_default_and_the_test_says_so(api):
    email = _config(api)["email"]
    assert email["enabled"] is False and email["security"] == "starttls"
    assert email["password"] == ""
    r = _test(api)
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == "e-mail notifications are off"
    assert _email_part(api) == []  # not reported while off


def test_missing_settings_are_refused_at_their_fields(api):
    before = _config(api)
    r = _put_email(api, enabled=True, recipients=["not an address"])
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert "not an e-mail address" in errors["email.recipients"]
    r = _put_email(api, enabled=True)
    assert r.status_code == 422, r.text
    assert set(r.json()["errors"]) == {"email.host", "email.sender", "email.recipients"}
    assert _config(api) == before


def test_the_test_message_goes_with_the_running_settings(api, server):
    settings = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "sender": "emsbox@example.com",
        "recipients": ["ops@example.com", "boss@example.com"],
        "username": "",
        "password": "kept secret",
    }
    r = _put_email(api, **settings)
    assert r.status_code == 200, r.text
    assert r.json()["config"]["email"]["password"] == REDACTED
    assert "kept secret" not in json.dumps(_config(api, "admin"))
    assert api.service.config.email.password.get_secret_value() == "kept secret"

    r = _test(api)
    assert r.status_code == 200, r.text
    assert r.json() == {"sent": True, "to": ["ops@example.com", "boss@example.com"]}
    (mail,) = server.wait_for(1)
    assert mail.message["Subject"] == "[emsbox] Test message (emsbox)"
    assert mail.recipients == ["ops@example.com", "boss@example.com"]
    assert "Europe/Rome" in mail.body()
    assert _test(api, "viewer").status_code == 403
    (part,) = _email_part(api)
    assert part["healthy"] is True


def test_a_server_that_cannot_be_reached_is_a_502_with_the_reason(api):
    r = _put_email(api, port=free_port())
    assert r.status_code == 200, r.text
    r = _test(api)
    assert r.status_code == 502, r.text
    assert r.json()["detail"].startswith("connection refused")


def test_a_missing_ca_file_is_refused_and_nothing_is_saved(api):
    before = _config(api)
    r = _put_email(api, security="starttls", ca_file="no-such-ca.pem")
    assert r.status_code == 422, r.text
    assert "no-such-ca.pem" in r.json()["errors"]["email.ca_file"]
    assert _config(api) == before


def test_a_host_that_cannot_be_looked_up_and_a_sign_in_in_clear_are_refused(api):
    before = _config(api)
    r = _put_email(api, enabled=True, host="smtp..example.com")
    assert r.status_code == 422, r.text
    assert "not a host name" in r.json()["errors"]["email.host"]
    r = _put_email(
        api,
        enabled=True,
        host="smtp.example.com",
        security="none",
        username="meter",
        sender="emsbox@example.com",
        recipients=["ops@example.com"],
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == {"email.security": "sign-in needs starttls or tls"}
    r = _put_email(api, subject_prefix="[x]\nBcc: someone@example.com")
    assert r.status_code == 422, r.text
    assert "no line breaks" in r.json()["errors"]["email.subject_prefix"]
    assert _config(api) == before


def test_an_unexpected_failure_of_the_test_is_a_502_with_the_reason(api, monkeypatch):
    from emsbox.gateways.email import smtp

    r = _put_email(
        api,
        enabled=True,
        host="127.0.0.1",
        port=free_port(),
        security="none",
        sender="emsbox@example.com",
        recipients=["ops@example.com"],
        username="",
    )
    assert r.status_code == 200, r.text

    def broken(*args, **kwargs):
        raise RuntimeError("something\nunforeseen")

    monkeypatch.setattr(smtp.aiosmtplib, "SMTP", broken)
    r = _test(api)
    assert r.status_code == 502, r.text
    assert r.json()["detail"] == "something unforeseen"
