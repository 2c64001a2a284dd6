"""MQTT in Chromium against a real `emsbox run`: turned on in the first-start wizard, then its
certificate sent from the settings page, which fills in the setting with the path it is kept at.

The tests run in order on one fresh device.
"""

import datetime as dt
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.sync_api import expect
from ui_support import ADMIN, ADMIN_PASSWORD, PageProblems, esc, login, screenshot

INPUT = "form.settings-form input:not([type=file]), form.settings-form select"


def closed_port() -> int:
    """A TCP port on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ca_pem(common_name: str) -> bytes:
    """A self-signed CA certificate, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@contextmanager
def api(served) -> Iterator[httpx.Client]:
    """An API client logged in as the admin."""
    with httpx.Client(base_url=f"{served.url}api/v1", verify=False, timeout=30) as client:
        r = client.post("/login", json={"name": ADMIN, "password": ADMIN_PASSWORD})
        assert r.status_code == 200, r.text
        yield client


def next_step(page, number: int) -> None:
    page.click("button[type=submit]")
    expect(page.locator(".step")).to_have_text(f"Step {number} of 7")


def test_the_wizard_turns_mqtt_on(page, served):
    problems = PageProblems(page)
    page.goto(served.url)
    expect(page.locator(".step")).to_have_text("Step 1 of 7")
    page.fill("#admin\\.name", ADMIN)
    page.fill("#admin\\.password", ADMIN_PASSWORD)
    page.fill("#admin\\.confirm", ADMIN_PASSWORD)
    for step in range(2, 7):
        next_step(page, step)

    # The protocols: MQTT off, its settings hidden until it is turned on.
    expect(page.locator("#mqtt\\.enabled")).not_to_be_checked()
    expect(page.locator("#mqtt-details")).to_be_hidden()
    page.check("#mqtt\\.enabled")
    expect(page.locator("#mqtt-details")).to_be_visible()
    expect(page.locator("#mqtt\\.tls")).to_be_checked()
    expect(page.locator("#mqtt\\.port")).to_have_value("8883")
    # Turned on without a broker: refused by its field, on this step.
    page.click("button[type=submit]")
    expect(page.locator("#mqtt\\.host-error")).to_have_text("the broker's host is needed")
    expect(page.locator(".step")).to_have_text("Step 6 of 7")
    page.fill("#mqtt\\.host", "127.0.0.1")
    page.uncheck("#mqtt\\.tls")
    expect(page.locator("#mqtt\\.port")).to_have_value("1883")  # the usual port follows
    port = closed_port()
    page.fill("#mqtt\\.port", str(port))
    page.fill("#mqtt\\.username", "ems")
    page.fill("#mqtt\\.password", "broker password")
    page.check("#mqtt\\.discovery")
    screenshot(page, "wizard-mqtt")
    next_step(page, 7)
    expect(page.locator("dl.summary")).to_contain_text(
        f"on, 127.0.0.1:{port} without TLS, Home Assistant discovery"
    )
    page.click("button[type=submit]")
    expect(page.locator(".topbar h1")).to_be_visible(timeout=30_000)

    with api(served) as client:
        mqtt = client.get("/config").json()["mqtt"]
        assert (mqtt["enabled"], mqtt["host"], mqtt["port"], mqtt["tls"]) == (
            True,
            "127.0.0.1",
            port,
            False,
        )
        assert (mqtt["username"], mqtt["password"], mqtt["discovery"]) == ("ems", "********", True)
        (gateway,) = [g for g in client.get("/system").json()["gateways"] if g["name"] == "MQTT"]
        assert gateway["enabled"] is True
    problems.errors = [e for e in problems.errors if "status of 422" not in e]
    problems.assert_none()


def test_a_ca_certificate_is_sent_from_the_settings_and_fills_in_its_path(page, served, tmp_path):
    login(page, served)
    problems = PageProblems(page)
    page.goto(f"{served.url}#/settings?section=mqtt")
    expect(page.locator("#settings-title")).to_have_text("MQTT")
    expect(page.locator(INPUT).first).to_be_attached()
    expect(page.locator("label[for='mqtt.enabled']")).to_have_text("Publish over MQTT")
    expect(page.locator(esc("mqtt.profile") + " option:checked")).to_have_text(
        "Generic MQTT broker"
    )
    # The password set in the wizard is kept, not shown.
    expect(page.locator(esc("mqtt.password"))).to_have_value("")
    expect(page.locator(esc("mqtt.password"))).to_have_attribute(
        "placeholder", "unchanged: type to replace"
    )
    # One chooser beside each certificate setting, labelled.
    for path in ("mqtt.ca_file", "mqtt.client_cert_file", "mqtt.client_key_file"):
        chooser = page.locator(esc(f"{path}-upload"))
        expect(chooser).to_have_attribute("type", "file")
        expect(page.locator(f"label[for='{path}-upload']")).to_have_count(1)

    # What a broker type needs is checked on saving, each problem next to its field.
    page.select_option(esc("mqtt.profile"), "aws_iot_core")
    page.click("#settings-save")
    expect(page.locator(esc("mqtt.tls-error"))).to_have_text("AWS IoT Core needs TLS")
    expect(page.locator(esc("mqtt.device_id-error"))).to_contain_text("thing name")
    expect(page.locator(esc("mqtt.client_cert_file-error"))).to_contain_text("certificate")
    page.click("#settings-discard")
    expect(page.locator(esc("mqtt.tls-error"))).to_be_hidden()

    # Garbage is refused with the device's reason, and the setting stays as it was.
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a certificate\n")
    page.set_input_files(esc("mqtt.ca_file-upload"), str(garbage))
    status = page.locator(esc("mqtt.ca_file-upload-status"))
    expect(status).to_contain_text("notes.txt was refused: not a PEM file")
    expect(page.locator(esc("mqtt.ca_file"))).to_have_value("")
    expect(page.locator("#settings-dirty")).to_have_text("No unsaved changes")

    # A CA certificate: checked and kept by the device, its path filled in.
    ca = tmp_path / "broker-ca.pem"
    ca.write_bytes(ca_pem("UI test CA"))
    page.set_input_files(esc("mqtt.ca_file-upload"), str(ca))
    expect(page.locator(esc("mqtt.ca_file"))).to_have_value("mqtt/ca.pem")
    expect(status).to_contain_text("save the settings to use it")
    expect(status).to_contain_text("CN=UI test CA")
    expect(page.locator("#settings-dirty")).to_have_text("Unsaved changes")
    page.check(esc("mqtt.tls"))
    screenshot(page, "settings-mqtt-upload")
    page.click("#settings-save")
    expect(page.locator("#settings-banner")).to_have_text("Saved. The new settings are in use.")
    expect(page.locator("#settings-dirty")).to_have_text("No unsaved changes")
    kept = served.data_dir / "mqtt" / "ca.pem"
    assert kept.read_bytes() == ca.read_bytes()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    with api(served) as client:
        mqtt = client.get("/config").json()["mqtt"]
        assert (mqtt["ca_file"], mqtt["tls"], mqtt["password"]) == ("mqtt/ca.pem", True, "********")

    # Coming back, the page says what the device keeps; the stored password can be removed.
    page.reload()
    expect(status).to_contain_text("On the device: mqtt/ca.pem, CN=UI test CA, valid until")
    # Another CA sent for the setting in use replaces the file; there is nothing to save.
    ca.write_bytes(ca_pem("UI test CA 2"))
    page.set_input_files(esc("mqtt.ca_file-upload"), str(ca))
    expect(status).to_contain_text("in place of the previous file")
    expect(status).to_contain_text("CN=UI test CA 2")
    expect(page.locator("#settings-dirty")).to_have_text("No unsaved changes")
    assert kept.read_bytes() == ca.read_bytes()
    page.click(esc("mqtt.password-clear"))
    expect(page.locator(esc("mqtt.password"))).not_to_have_attribute(
        "placeholder", "unchanged: type to replace"
    )
    page.click("#settings-save")
    expect(page.locator("#settings-dirty")).to_have_text("No unsaved changes")
    with api(served) as client:
        assert client.get("/config").json()["mqtt"]["password"] == ""
    # The browser reports the refused save (422) and upload (400); nothing else may appear.
    problems.errors = [
        e for e in problems.errors if "status of 400" not in e and "status of 422" not in e
    ]
    problems.assert_none()
