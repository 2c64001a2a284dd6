"""An alarm raised by the controller of a running service ends up as an e-mail, and so does
its acknowledgement when asked for."""

from __future__ import annotations

import time

from emsbox.app import Service
from emsbox.config import validate
from emsbox.testing.smtp import MailServer, Received


def wait_for_mail(server: MailServer, subject: str, timeout_s: float = 30.0) -> Received:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [m for m in server.received if m.message["Subject"] == subject]
        if found:
            return found[0]
        assert time.monotonic() < deadline, [m.message["Subject"] for m in server.received]
        time.sleep(0.05)


def test_an_alarm_of_the_simulated_meter_is_mailed(tmp_path):
    server = MailServer().start()
    config = validate(
        {
            "site": {"name": "Test site", "timezone": "Europe/Rome"},
            # Any supply voltage is above 1 V: the alarm is certain to be raised at once.
            "alarms": {
                "rules": [
                    {"name": "Voltage", "variable": "v_ln_sys", "condition": "above", "high": 1}
                ]
            },
            "email": {
                "enabled": True,
                "host": "127.0.0.1",
                "port": server.port,
                "security": "none",
                "sender": "emsbox@example.com",
                "recipients": ["ops@example.com"],
                "events": ["raised", "acknowledged"],
            },
        }
    )
    service = Service(config, tmp_path)
    try:
        service.start()
        mail = wait_for_mail(server, "[emsbox] Alarm raised: Voltage (Test site)")
        body = mail.body()
        assert "Load:      main" in body and "Variable:  v_ln_sys" in body
        assert "(Europe/Rome)" in body
        assert mail.recipients == ["ops@example.com"]

        assert service.acknowledge_alarm("Voltage", "anna")
        mail = wait_for_mail(server, "[emsbox] Alarm acknowledged: Voltage (Test site)")
        assert "Acknowledged by: anna" in mail.body()
        (part,) = [p for p in service.health() if p.name == "email"]
        assert part.healthy, part.detail
    finally:
        service.stop()
        server.stop()
