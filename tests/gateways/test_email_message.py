"""The e-mail settings' checks and the messages built from alarm events (pure)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from emsbox.config import ConfigError, validate
from emsbox.gateways.email.config import AlarmEventKind, EmailConfig, SmtpSecurity
from emsbox.gateways.email.message import (
    Folded,
    Letterhead,
    alarm_message,
    format_value,
    trial_message,
)

ROME = ZoneInfo("Europe/Rome")
# 2026-07-01 10:00:00 UTC: 12:00 in Rome (summer time).
SUMMER_S = dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC).timestamp()
HEAD = Letterhead("ems@example.com", ("ops@example.com", "boss@example.com"), "Caffè Roma", ROME)


def notice(**more: object) -> dict[str, object]:
    base: dict[str, object] = {
        "time_s": SUMMER_S,
        "name": "Overvoltage",
        "event": "raised",
        "load": "main",
        "variable": "v_ln_sys",
        "value": 262.345678,
        "by": None,
    }
    return base | more


# -- settings ------------------------------------------------------------------------------


def test_email_is_off_by_default_with_starttls_on_587():
    config = EmailConfig()
    assert not config.enabled
    assert (config.port, config.security, config.check_hostname) == (
        587,
        SmtpSecurity.STARTTLS,
        True,
    )
    assert config.events == [AlarmEventKind.RAISED, AlarmEventKind.CLEARED]
    assert config.retry_max_age_h == 24.0
    assert validate({}).email == config


def test_enabled_needs_a_host_a_sender_and_a_recipient_each_named_at_its_field():
    with pytest.raises(ConfigError) as refused:
        validate({"email": {"enabled": True}})
    assert refused.value.problems == [
        "email.host: the SMTP server's host is needed",
        "email.sender: the sender's address is needed",
        "email.recipients: at least one recipient is needed",
    ]
    ok = {"enabled": True, "host": "smtp.example.com", "sender": "a@example.com"}
    validate({"email": ok | {"recipients": ["b@example.com"]}})
    # Off, nothing is required: settings can be prepared before they are complete.
    validate({"email": {"enabled": False, "recipients": []}})


@pytest.mark.parametrize(
    "address", ["", "plain", "a@", "@b.com", "a b@c.com", "a@b..com", "Name <a@b.com>", "ä@b.it"]
)
def test_addresses_are_checked(address):
    with pytest.raises(ValidationError, match="not an e-mail address"):
        EmailConfig(recipients=[address])


def test_recipients_are_stripped_and_each_given_once():
    config = EmailConfig(recipients=[" ops@example.com ", "root@localhost"], sender=" ")
    assert config.recipients == ["ops@example.com", "root@localhost"]
    assert config.sender == ""
    with pytest.raises(ValidationError, match="each recipient once"):
        EmailConfig(recipients=["a@b.com", "a@b.com"])


def test_events_are_kept_in_their_order_once():
    config = EmailConfig.model_validate({"events": ["acknowledged", "raised", "raised"]})
    assert config.events == [AlarmEventKind.RAISED, AlarmEventKind.ACKNOWLEDGED]
    with pytest.raises(ValidationError):
        EmailConfig.model_validate({"events": ["exploded"]})


def test_the_password_is_a_secret():
    config = EmailConfig.model_validate({"password": "hunter2 long"})
    assert "hunter2" not in repr(config)
    assert config.password.get_secret_value() == "hunter2 long"


@pytest.mark.parametrize(
    "host", ["smtp.example.com", "smtp.example.com.", "caffè.it", "127.0.0.1", "::1", "mail_1"]
)
def test_host_names_and_addresses_are_taken(host):
    assert EmailConfig(host=f" {host} ").host == host


def test_an_ipv6_address_in_brackets_is_taken_without_them():
    assert EmailConfig(host="[2001:db8::25]").host == "2001:db8::25"


@pytest.mark.parametrize(
    "host", ["smtp..example.com", ".example.com", "a" * 64 + ".com", "smtp.example.com:25", "a/b"]
)
def test_a_host_that_cannot_be_looked_up_is_refused(host):
    with pytest.raises(ValidationError, match="host name"):
        EmailConfig(host=host)


@pytest.mark.parametrize("prefix", ["[x]\nX-Evil: 1", "[x]\r", "a\tb", "a\u2028b"])
def test_the_subject_prefix_is_one_line(prefix):
    with pytest.raises(ValidationError, match="no line breaks"):
        EmailConfig(subject_prefix=prefix)


def test_a_sign_in_in_clear_is_refused_but_on_this_device():
    base = {
        "enabled": True,
        "host": "smtp.example.com",
        "sender": "a@example.com",
        "recipients": ["b@example.com"],
        "username": "meter",
        "security": "none",
    }
    with pytest.raises(ConfigError) as refused:
        validate({"email": base})
    assert refused.value.problems == ["email.security: sign-in needs starttls or tls"]
    for security in ("starttls", "tls"):
        validate({"email": base | {"security": security}})
    for host in ("127.0.0.1", "localhost", "::1"):
        validate({"email": base | {"host": host}})
    validate({"email": base | {"username": ""}})


def test_the_spool_holds_1000_messages_unless_told():
    assert EmailConfig().max_waiting == 1000
    with pytest.raises(ValidationError):
        EmailConfig(max_waiting=5)


# -- messages ------------------------------------------------------------------------------


def test_a_raised_alarm_says_what_where_when_and_how_much():
    message = alarm_message(notice(), HEAD)
    assert message["Subject"] == "Alarm raised: Overvoltage (Caffè Roma)"
    assert message["From"] == "ems@example.com"
    assert message["To"] == "ops@example.com, boss@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@example.com>")
    assert message["Date"] == "Wed, 01 Jul 2026 12:00:00 +0200"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    body = message.get_content()
    assert "Site:      Caffè Roma" in body
    assert "Time:      2026-07-01 12:00:00 CEST (Europe/Rome)" in body
    assert "Load:      main" in body
    assert "Variable:  v_ln_sys (" in body
    assert "Value:     262.346 V" in body
    assert "Event:     raised" in body
    assert "Acknowledged by" not in body
    # The raw message is 7-bit: it needs no 8BITMIME from the server.
    assert message.as_bytes().isascii()


def test_the_prefix_the_acknowledger_and_a_missing_value():
    head = Letterhead("ems@example.com", ("ops@example.com",), "Plant", ROME, "[emsbox]")
    message = alarm_message(notice(event="acknowledged", by="anna", value=None), head)
    assert message["Subject"] == "[emsbox] Alarm acknowledged: Overvoltage (Plant)"
    body = message.get_content()
    assert "Acknowledged by: anna" in body
    assert "Value:     none (no recent reading)" in body


def test_a_built_in_alarm_without_a_variable_gives_its_detail():
    event = notice(name="system: storage almost full", variable="", load="", detail="80 MB free")
    body = alarm_message(event, HEAD).get_content()
    assert "Variable" not in body and "Load" not in body
    assert "Detail:    80 MB free" in body


def test_values_carry_their_unit():
    assert format_value(49.98, "freq") == "49.98 Hz"
    assert format_value(1234567.89, "kwh_imp") == "1234568 kWh"
    assert format_value(3.0, "no_such_variable") == "3"
    assert format_value(None, "p_sys") == "none (no recent reading)"


def test_the_test_message_names_the_site_and_the_recipients():
    message = trial_message(HEAD, SUMMER_S)
    assert message["Subject"] == "Test message (Caffè Roma)"
    body = message.get_content()
    assert "2026-07-01 12:00:00 CEST" in body
    assert "ops@example.com, boss@example.com" in body


def test_line_breaks_of_the_site_alarm_and_prefix_become_spaces_in_the_subject():
    head = Letterhead("ems@example.com", ("ops@example.com",), "Plant\r\nBcc: x@y.it", ROME, "[a]")
    message = alarm_message(notice(name="Over\u2028voltage"), head)
    assert message["Subject"] == "[a] Alarm raised: Over voltage (Plant  Bcc: x@y.it)"
    assert message["Bcc"] is None
    assert trial_message(head, SUMMER_S)["Subject"] == "[a] Test message (Plant  Bcc: x@y.it)"


def test_a_message_standing_for_earlier_events_says_how_many():
    folded = Folded({"raised": 3, "cleared": 2}, SUMMER_S)
    body = alarm_message(notice(event="cleared"), HEAD, folded).get_content()
    assert (
        "This alarm changed often: 5 earlier events since 2026-07-01 12:00:00 CEST "
        "(2 cleared, 3 raised) were not sent one by one; this message is the latest."
    ) in " ".join(body.split())
    assert "changed often" not in alarm_message(notice(), HEAD).get_content()
