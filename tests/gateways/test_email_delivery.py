"""Alarm e-mails against a real SMTP server (aiosmtpd) on 127.0.0.1: plain, STARTTLS and
implicit TLS, sign-in, refusals, and the spool through outages and restarts."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from emsbox.gateways.email.config import EmailConfig
from emsbox.gateways.email.sender import (
    SPOOL_DIR,
    EmailDisabledError,
    EmailError,
    EmailNotifier,
    EmailStatus,
)
from emsbox.gateways.errors import SetupError
from emsbox.testing.certificates import CertificateAuthority
from emsbox.testing.mosquitto import free_port
from emsbox.testing.smtp import MailServer, Security

SENDER = "emsbox@example.com"
OPS = "ops@example.com"
ROME = ZoneInfo("Europe/Rome")


def notice(event: str = "raised", name: str = "Overvoltage", **more: object) -> dict[str, object]:
    base: dict[str, object] = {
        "time_s": time.time(),
        "name": name,
        "event": event,
        "load": "main",
        "variable": "v_ln_sys",
        "value": 262.5,
        "by": None,
    }
    return base | more


def settings(port: int, security: Security = "none", **more: object) -> EmailConfig:
    base = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "security": security,
        "sender": SENDER,
        "recipients": [OPS],
        "timeout_s": 5.0,
        "subject_prefix": "",
    }
    return EmailConfig.model_validate(base | more)


def wait_status(
    notifier: EmailNotifier, predicate: Callable[[EmailStatus], bool], timeout_s: float = 20.0
) -> EmailStatus:
    deadline = time.monotonic() + timeout_s
    while not predicate(status := notifier.status()):
        assert time.monotonic() < deadline, f"not reached: {status}"
        time.sleep(0.02)
    return status


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def notifier(data_dir: Path) -> Iterator[EmailNotifier]:
    """A notifier that retries after 50 ms, then 100 ms, at most 200 ms apart."""
    n = EmailNotifier(data_dir, retry_min_s=0.05, retry_max_s=0.2)
    try:
        yield n
    finally:
        n.stop()


@pytest.fixture
def server() -> Iterator[MailServer]:
    s = MailServer().start()
    try:
        yield s
    finally:
        s.stop()


def tls_server(ca: CertificateAuthority, security: Security, **more: object) -> MailServer:
    issued = ca.issue("smtp", "localhost", server=True)
    return MailServer(security=security, cert=issued.cert, key=issued.key, **more).start()


# -- delivery ------------------------------------------------------------------------------


def test_an_alarm_is_delivered_with_its_details(notifier, server, data_dir):
    notifier.apply(settings(server.port, subject_prefix="[emsbox]"), "Plant 7", ROME)
    notifier.notify(notice())
    (mail,) = server.wait_for(1)
    assert mail.sender == SENDER and mail.recipients == [OPS]
    assert mail.message["Subject"] == "[emsbox] Alarm raised: Overvoltage (Plant 7)"
    assert mail.message["To"] == OPS
    body = mail.body()
    assert "Site:      Plant 7" in body
    assert "Value:     262.5 V" in body
    assert "Load:      main" in body
    status = wait_status(notifier, lambda s: s.sent == 1 and s.waiting == 0)
    assert status.healthy and status.last_success_s is not None and not status.failing
    assert not list((data_dir / SPOOL_DIR).glob("*.json"))


def test_only_the_configured_events_are_sent_in_order(notifier, server):
    notifier.apply(settings(server.port, recipients=[OPS, "boss@example.com"]), "Plant", ROME)
    notifier.notify(notice("acknowledged", by="anna"))  # not among the default events
    notifier.notify(notice("cleared"))
    notifier.notify(notice("raised", name="Second"))
    first, second = server.wait_for(2)
    assert first.message["Subject"] == "Alarm cleared: Overvoltage (Plant)"
    assert second.message["Subject"] == "Alarm raised: Second (Plant)"
    assert first.recipients == [OPS, "boss@example.com"]
    assert wait_status(notifier, lambda s: s.sent == 2).waiting == 0
    assert len(server.received) == 2


def test_starttls_with_the_servers_ca_file_relative_to_the_data_directory(notifier, data_dir, ca):
    server = tls_server(ca, "starttls")
    try:
        (data_dir / "certs").mkdir()
        shutil.copy(ca.cert, data_dir / "certs" / "smtp-ca.pem")
        config = settings(server.port, "starttls", ca_file="certs/smtp-ca.pem")
        notifier.apply(config, "Plant", ROME)
        assert notifier.send_test() == [OPS]
        notifier.notify(notice())
        test, alarm = server.wait_for(2)
        assert test.message["Subject"] == "Test message (Plant)"
        assert alarm.message["Subject"] == "Alarm raised: Overvoltage (Plant)"
    finally:
        server.stop()


def test_implicit_tls_smtps(notifier, ca):
    server = tls_server(ca, "tls")
    try:
        config = settings(server.port, "tls", host="localhost", ca_file=str(ca.cert))
        notifier.apply(config, "Plant", ROME)
        notifier.notify(notice())
        (mail,) = server.wait_for(1)
        assert "Overvoltage" in mail.message["Subject"]
    finally:
        server.stop()


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_server_certificate_from_an_untrusted_ca_is_refused(notifier, ca, tmp_path, security):
    stranger = CertificateAuthority(tmp_path / "other-ca", "another CA")
    server = tls_server(stranger, security)
    try:
        notifier.apply(settings(server.port, security, ca_file=str(ca.cert)), "Plant", ROME)
        with pytest.raises(EmailError, match="certificate is not trusted") as refused:
            notifier.send_test()
        assert "\n" not in str(refused.value)
        notifier.notify(notice())
        status = wait_status(notifier, lambda s: s.failing)
        assert "certificate is not trusted" in (status.last_error or "")
        assert status.waiting == 1 and not status.healthy
        assert server.received == []
    finally:
        server.stop()


def test_the_system_store_does_not_trust_a_private_ca(notifier, ca):
    server = tls_server(ca, "starttls")
    try:
        notifier.apply(settings(server.port, "starttls"), "Plant", ROME)
        with pytest.raises(EmailError, match="certificate is not trusted"):
            notifier.send_test()
    finally:
        server.stop()


def test_sign_in_over_tls_and_a_wrong_password_refused(notifier, ca):
    server = tls_server(ca, "starttls", users={"meter": "correct horse"})
    try:
        good = settings(
            server.port,
            "starttls",
            ca_file=str(ca.cert),
            username="meter",
            password="correct horse",
        )
        notifier.apply(good, "Plant", ROME)
        notifier.notify(notice())
        (mail,) = server.wait_for(1)
        assert mail.login == "meter"
        bad = good.model_copy(update={"password": SecretStr("wrong")})
        notifier.apply(bad, "Plant", ROME)
        with pytest.raises(EmailError, match=r"authentication refused: 535"):
            notifier.send_test()
        # Without signing in, the server takes nothing.
        notifier.apply(good.model_copy(update={"username": ""}), "Plant", ROME)
        with pytest.raises(EmailError, match="530"):
            notifier.send_test()
        assert len(server.received) == 1
    finally:
        server.stop()


def test_sign_in_over_implicit_tls(notifier, ca):
    server = tls_server(ca, "tls", users={"meter": "correct horse"})
    try:
        config = settings(
            server.port, "tls", ca_file=str(ca.cert), username="meter", password="correct horse"
        )
        notifier.apply(config, "Plant", ROME)
        assert notifier.send_test() == [OPS]
        assert server.wait_for(1)[0].login == "meter"
    finally:
        server.stop()


def test_a_refused_connection_says_so(notifier):
    notifier.apply(settings(free_port()), "Plant", ROME)
    with pytest.raises(EmailError, match="connection refused"):
        notifier.send_test()


def test_the_test_needs_e_mail_on(notifier):
    with pytest.raises(EmailDisabledError):
        notifier.send_test()
    notifier.apply(settings(free_port()).model_copy(update={"enabled": False}), "P", ROME)
    with pytest.raises(EmailDisabledError):
        notifier.send_test()


def test_a_missing_ca_file_is_a_setup_error(notifier, data_dir):
    with pytest.raises(SetupError) as refused:
        notifier.apply(settings(25, "starttls", ca_file="nowhere.pem"), "Plant", ROME)
    assert refused.value.key == "email.ca_file"
    assert str(data_dir / "nowhere.pem") in str(refused.value)
    (data_dir / "junk.pem").write_text("not a certificate")
    with pytest.raises(SetupError, match="CA file"):
        notifier.check(settings(25, "tls", ca_file="junk.pem"))
    # Without TLS no file is used, and none is checked.
    notifier.check(settings(25, "none", ca_file="nowhere.pem"))


# -- outages, restarts and refusals ----------------------------------------------------------


def test_a_message_waits_for_a_server_that_is_down_and_arrives_once(notifier):
    port = free_port()
    notifier.apply(settings(port), "Plant", ROME)
    notifier.notify(notice())
    status = wait_status(notifier, lambda s: s.failing)
    assert "connection refused" in (status.last_error or "")
    assert status.waiting == 1
    # Several attempts fail while the server is away.
    before = time.monotonic()
    wait_status(notifier, lambda s: time.monotonic() - before > 0.5)
    assert notifier.status().waiting == 1
    server = MailServer(port).start()
    try:
        server.wait_for(1)
        status = wait_status(notifier, lambda s: s.waiting == 0 and s.sent == 1)
        assert not status.failing and status.healthy
        assert len(server.received) == 1
    finally:
        server.stop()


def test_a_spooled_message_is_sent_after_a_restart_and_not_while_off(data_dir):
    port = free_port()
    first = EmailNotifier(data_dir, retry_min_s=0.05, retry_max_s=0.2)
    first.apply(settings(port), "Plant", ROME)
    first.notify(notice(name="Before restart"))
    wait_status(first, lambda s: s.failing and s.waiting == 1)
    first.stop()
    (spooled,) = (data_dir / SPOOL_DIR).glob("*.json")
    assert spooled.stat().st_mode & 0o077 == 0  # readable by emsbox only

    server = MailServer(port).start()
    second = EmailNotifier(data_dir, retry_min_s=0.05, retry_max_s=0.2)
    try:
        # Off: the message stays in the spool for when e-mail is on again.
        second.apply(settings(port).model_copy(update={"enabled": False}), "Plant", ROME)
        assert second.status().waiting == 1 and not second.status().enabled
        second.notify(notice(name="While off"))
        second.apply(settings(port), "Plant", ROME)
        (mail,) = server.wait_for(1)
        assert mail.message["Subject"] == "Alarm raised: Before restart (Plant)"
        wait_status(second, lambda s: s.waiting == 0 and s.sent == 1)
        assert len(server.received) == 1
    finally:
        second.stop()
        server.stop()


def test_a_permanently_refused_recipient_is_dropped_with_the_reason(notifier, caplog):
    server = MailServer(refuse={"nobody@example.com": "550 5.1.1 no such user"}).start()
    try:
        caplog.set_level(logging.INFO, "emsbox.gateways.email")
        notifier.apply(settings(server.port, recipients=["nobody@example.com"]), "P", ROME)
        notifier.notify(notice())
        status = wait_status(notifier, lambda s: s.refused == 1)
        assert status.waiting == 0 and status.sent == 0
        assert "550 5.1.1 no such user" in caplog.text and "dropped" in caplog.text
        # The next message is tried as usual, and nothing more is sent for the first.
        notifier.apply(settings(server.port, recipients=[OPS]), "P", ROME)
        notifier.notify(notice(name="Next"))
        (mail,) = server.wait_for(1)
        assert "Next" in mail.message["Subject"]
        assert wait_status(notifier, lambda s: s.sent == 1).refused == 1
        notifier.apply(settings(server.port, recipients=["nobody@example.com"]), "P", ROME)
        with pytest.raises(EmailError, match=r"recipient nobody@example\.com refused: 550"):
            notifier.send_test()
        # One good recipient does not hide a wrong one.
        notifier.apply(settings(server.port, recipients=[OPS, "nobody@example.com"]), "P", ROME)
        with pytest.raises(EmailError, match=r"^recipient nobody@example\.com refused: 550 5"):
            notifier.send_test()
        assert server.wait_for(2)[1].recipients == [OPS]
    finally:
        server.stop()


def test_a_recipient_refused_for_now_gets_it_later_and_the_others_only_once(
    notifier, data_dir, caplog
):
    later = "later@example.com"
    server = MailServer(refuse={later: "450 4.2.1 mailbox busy, try later"}).start()
    try:
        caplog.set_level(logging.INFO, "emsbox.gateways.email")
        notifier.apply(settings(server.port, recipients=[OPS, later]), "Plant", ROME)
        notifier.notify(notice())
        (first,) = server.wait_for(1)
        assert first.recipients == [OPS]
        wait_status(notifier, lambda s: s.sent == 1)
        assert "later@example.com refused: 450" in caplog.text
        (kept,) = (data_dir / SPOOL_DIR).glob("*.json")
        assert json.loads(kept.read_text())["to"] == [later]
        server.refuse(later, None)  # the retries go on meanwhile
        _, second = server.wait_for(2)
        assert second.recipients == [later]
        wait_status(notifier, lambda s: s.waiting == 0)
        assert len(server.received) == 2
    finally:
        server.stop()


def test_a_message_is_given_up_past_the_retry_age(data_dir, caplog):
    now, ticks = [1_800_000_000.0], [50.0]
    notifier = EmailNotifier(
        data_dir,
        clock=lambda: now[0],
        ticks=lambda: ticks[0],
        retry_min_s=0.05,
        retry_max_s=0.1,
    )
    try:
        caplog.set_level(logging.INFO, "emsbox.gateways.email")
        notifier.apply(settings(free_port(), retry_max_age_h=1.0), "Plant", ROME)
        notifier.notify(notice())
        status = wait_status(notifier, lambda s: s.failing and s.waiting == 1)
        assert status.oldest_waiting_s == 0.0
        now[0] += 3599.0
        ticks[0] += 3599.0
        assert wait_status(notifier, lambda s: s.oldest_waiting_s == 3599.0).given_up == 0
        # The clock set a day forward (NTP at boot): the message has not been tried an hour.
        now[0] += 86400.0
        caplog.set_level(logging.DEBUG, "emsbox.gateways.email")

        def tries() -> int:
            return sum("tried again in" in r.getMessage() for r in caplog.records)

        before = tries()
        deadline = time.monotonic() + 10.0
        while tries() < before + 3:  # several failed attempts since the clock was set
            assert time.monotonic() < deadline, "no retries"
            time.sleep(0.05)
        assert notifier.status().given_up == 0 and notifier.status().waiting == 1
        ticks[0] += 2.0
        status = wait_status(notifier, lambda s: s.given_up == 1)
        assert status.waiting == 0
        assert "given up after 1 h: connection refused" in caplog.text
    finally:
        notifier.stop()


def test_an_unreadable_spool_file_is_set_aside(notifier, server, data_dir, caplog):
    spool = data_dir / SPOOL_DIR
    spool.mkdir()
    (spool / "0000000000001-deadbeef.json").write_text("{not json")
    notifier.apply(settings(server.port), "Plant", ROME)
    notifier.notify(notice())
    server.wait_for(1)
    wait_status(notifier, lambda s: s.waiting == 0)
    assert (spool / "0000000000001-deadbeef.bad").exists()
    assert "unreadable" in caplog.text


def test_health_fails_on_a_failed_attempt_or_a_long_wait():
    def status(failing: bool, oldest: float | None) -> EmailStatus:
        return EmailStatus(True, 1, oldest, 3, 0, 0, None, "connection refused", failing)

    assert status(False, None).healthy
    assert status(False, 60.0).healthy
    assert not status(True, 1.0).healthy
    assert not status(False, 3600.0).healthy  # e.g. a recipient that keeps refusing for now
    assert "last error: connection refused" in status(True, 1.0).detail
    assert "last error" not in status(False, 1.0).detail


# -- robustness -------------------------------------------------------------------------------


def test_a_host_name_that_cannot_be_looked_up_is_a_failed_attempt_and_sending_goes_on(
    notifier, server, caplog
):
    caplog.set_level(logging.DEBUG, "emsbox.gateways.email")
    # The settings refuse such a host; one saved before that check must not stop the sender.
    bad = settings(server.port).model_copy(update={"host": "mail..example.com"})
    notifier.apply(bad, "Plant", ROME)
    with pytest.raises(EmailError, match="host name cannot be looked up") as refused:
        notifier.send_test()
    assert "\n" not in str(refused.value)
    notifier.notify(notice())
    status = wait_status(notifier, lambda s: s.failing and s.waiting == 1)
    assert "host name cannot be looked up" in (status.last_error or "") and not status.healthy

    def attempts() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage().startswith("e-mail not sent")]

    deadline = time.monotonic() + 20.0
    while len(attempts()) < 3:
        assert time.monotonic() < deadline, len(attempts())
        time.sleep(0.02)
    # Said once, however often it is tried again.
    assert [r.levelno for r in attempts()].count(logging.WARNING) == 1

    notifier.apply(settings(server.port), "Plant", ROME)  # the host fixed: the same sender
    (mail,) = server.wait_for(1)
    assert "Overvoltage" in mail.message["Subject"]
    assert wait_status(notifier, lambda s: s.sent == 1 and s.waiting == 0).healthy


def test_every_recipient_refused_for_good_is_unhealthy_until_a_message_goes(notifier):
    server = MailServer(refuse={OPS: "550 5.1.1 no such user"}).start()
    try:
        notifier.apply(settings(server.port), "Plant", ROME)
        notifier.notify(notice())
        status = wait_status(notifier, lambda s: s.refused == 1)
        assert status.waiting == 0 and status.failing and not status.healthy
        assert "refused by the server" in (status.last_error or "")
        assert "550 5.1.1 no such user" in status.detail
        server.refuse(OPS, None)  # the mailbox is back
        notifier.notify(notice(name="Next"))
        (mail,) = server.wait_for(1)
        assert "Next" in mail.message["Subject"]
        status = wait_status(notifier, lambda s: s.sent == 1)
        assert status.healthy and not status.failing and status.refused == 1
    finally:
        server.stop()


def test_a_policy_refusal_is_retried_like_an_outage(notifier):
    server = MailServer(refuse={OPS: "550 5.7.1 Relaying denied"}).start()
    try:
        notifier.apply(settings(server.port), "Plant", ROME)
        notifier.notify(notice())
        status = wait_status(notifier, lambda s: s.failing and s.waiting == 1)
        assert "550 5.7.1 Relaying denied" in (status.last_error or "")
        assert status.refused == 0 and not status.healthy
        server.refuse(OPS, None)  # e.g. the sign-in was added
        (mail,) = server.wait_for(1)
        assert "Overvoltage" in mail.message["Subject"]
        assert wait_status(notifier, lambda s: s.waiting == 0 and s.sent == 1).healthy
    finally:
        server.stop()


def test_a_full_spool_drops_the_oldest_and_the_newest_arrive(notifier, data_dir, monkeypatch):
    port = free_port()
    notifier.apply(settings(port, max_waiting=10), "Plant", ROME)
    for i in range(15):
        notifier.notify(notice(name=f"Alarm {i:02d}"))
    status = wait_status(notifier, lambda s: s.dropped == 5)
    assert status.waiting == 10 and "5 dropped (spool full)" in status.detail
    assert len(list((data_dir / SPOOL_DIR).glob("*.json"))) == 10

    # The status comes from memory: the directory is not listed for it.
    def no_listing() -> list[Path]:
        raise AssertionError("the spool listed")

    monkeypatch.setattr(notifier._spool, "names", no_listing)
    assert notifier.status().waiting == 10
    monkeypatch.undo()

    server = MailServer(port).start()
    try:
        mails = server.wait_for(10)
        subjects = [m.message["Subject"] for m in mails]
        assert subjects == [f"Alarm raised: Alarm {i:02d} (Plant)" for i in range(5, 15)]
        status = wait_status(notifier, lambda s: s.waiting == 0 and s.sent == 10)
        assert status.oldest_waiting_s is None
    finally:
        server.stop()


def test_a_flapping_alarm_is_folded_into_one_later_message(data_dir, server):
    first = EmailNotifier(data_dir, retry_min_s=0.05, retry_max_s=0.2)
    every = ["raised", "cleared", "acknowledged"]
    try:
        first.apply(settings(server.port, events=every), "Plant", ROME)
        for i in range(100):
            first.notify(notice("raised" if i % 2 == 0 else "cleared", time_s=1_800_000_000 + i))
        first.notify(notice("acknowledged", by="anna"))  # never held back
        first.notify(notice(name="Another alarm"))  # not this alarm's window
        wait_status(first, lambda s: s.folded == 98 and s.sent == 3)
        subjects = sorted(m.message["Subject"] for m in server.received)
        assert subjects == [
            "Alarm acknowledged: Overvoltage (Plant)",
            "Alarm raised: Another alarm (Plant)",
            "Alarm raised: Overvoltage (Plant)",
        ]
    finally:
        first.stop()  # the held event goes to the spool
    assert len(list((data_dir / SPOOL_DIR).glob("*.json"))) == 1
    second = EmailNotifier(data_dir, retry_min_s=0.05, retry_max_s=0.2)
    try:
        second.apply(settings(server.port), "Plant", ROME)
        mail = server.wait_for(4)[3]
        assert mail.message["Subject"] == "Alarm cleared: Overvoltage (Plant)"
        assert "98 earlier events since" in mail.body()
        assert "(49 cleared, 49 raised)" in mail.body()
    finally:
        second.stop()


def test_the_latest_event_of_a_flapping_alarm_arrives_when_the_wait_is_over(data_dir, server):
    notifier = EmailNotifier(data_dir, retry_min_s=0.05, retry_max_s=0.2, coalesce_s=0.2)
    try:
        notifier.apply(settings(server.port), "Plant", ROME)
        notifier.notify(notice("raised"))
        notifier.notify(notice("cleared"))
        mails = server.wait_for(2)
        assert mails[-1].message["Subject"] == "Alarm cleared: Overvoltage (Plant)"
        wait_status(notifier, lambda s: s.sent == 2 and s.waiting == 0)
    finally:
        notifier.stop()


def test_control_characters_of_the_site_and_alarm_names_become_spaces(notifier, server):
    notifier.apply(settings(server.port), "Plant 1\r\nBcc: intruder@example.com", ROME)
    notifier.notify(notice(name="Over\nvoltage", detail="line one\nline two"))
    (mail,) = server.wait_for(1)
    assert mail.message["Subject"] == (
        "Alarm raised: Over voltage (Plant 1  Bcc: intruder@example.com)"
    )
    assert mail.message["Bcc"] is None and mail.recipients == [OPS]
    assert notifier.send_test() == [OPS]


def test_a_thread_that_did_not_stop_is_never_joined_by_a_second(notifier, server, monkeypatch):
    import threading

    from emsbox.gateways.email import sender

    def email_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "email" and t.is_alive()]

    before = len(email_threads())
    notifier.apply(settings(server.port), "Plant", ROME)
    gate = threading.Event()
    loop = notifier._loop
    assert loop is not None
    loop.call_soon_threadsafe(gate.wait)  # the sending thread is busy and cannot stop
    monkeypatch.setattr(sender, "STOP_WAIT_S", 0.05)
    notifier.stop()
    assert len(email_threads()) == before + 1
    with pytest.raises(SetupError, match="has not stopped yet"):
        notifier.apply(settings(server.port), "Plant", ROME)
    assert len(email_threads()) == before + 1
    gate.set()
    monkeypatch.setattr(sender, "STOP_WAIT_S", 20.0)
    notifier.apply(settings(server.port), "Plant", ROME)
    assert len(email_threads()) == before + 1
    notifier.notify(notice())
    server.wait_for(1)
    wait_status(notifier, lambda s: s.sent == 1 and s.waiting == 0)
    assert len(server.received) == 1


def test_the_test_message_gives_up_after_its_overall_limit(notifier, monkeypatch):
    import socket

    from emsbox.gateways.email import sender

    # A server that takes the connection and never says a word.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setattr(sender, "TEST_LIMIT_S", 0.2)
        notifier.apply(settings(silent.getsockname()[1], timeout_s=60.0), "Plant", ROME)
        with pytest.raises(EmailError, match=r"no answer within 0\.2 s"):
            notifier.send_test()
