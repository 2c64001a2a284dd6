"""The MQTT gateway's settings through the API: validation by field, certificate files that
must exist, secrets that never leave the device, the certificate upload and the setup wizard."""

import datetime as dt
import json
import socket
import stat
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from emsbox.app import Service
from emsbox.config import REDACTED, validate
from emsbox.gateways.mqtt.config import AzureAuth, MqttProfile, MqttProtocol
from emsbox.languages import LANGUAGES
from emsbox.web.api import create_app
from emsbox.web.api.mqtt_routes import MAX_BYTES

APP_I18N = "src/emsbox/web/static/app/i18n"
PASSWORD = "correct horse battery"


# -- helpers -------------------------------------------------------------------------------


def _config(api, role="admin"):
    r = api.client.get("/api/v1/config", headers=api.headers(role))
    assert r.status_code == 200, r.text
    return r.json()


def _put(api, config, role="installer"):
    return api.client.put("/api/v1/config", json=config, headers=api.headers(role))


def _with_mqtt(config, **mqtt):
    changed = json.loads(json.dumps(config))
    changed["mqtt"] |= mqtt
    return changed


def _mqtt_gateway(api):
    system = api.client.get("/api/v1/system", headers=api.headers("viewer")).json()
    (gateway,) = [g for g in system["gateways"] if g["name"] == "MQTT"]
    return gateway


def _turn_off(api):
    r = _put(api, _with_mqtt(_config(api), enabled=False))
    assert r.status_code == 200, r.text
    assert _mqtt_gateway(api) == {
        "name": "MQTT",
        "enabled": False,
        "healthy": True,
        "detail": "off",
    }


def _closed_port() -> int:
    """A TCP port on 127.0.0.1 where nothing listens (taken and released at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key, encryption=None, form=serialization.PrivateFormat.PKCS8) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, form, encryption or serialization.NoEncryption()
    )


class Authority:
    """A certificate authority made for the test, which signs client certificates."""

    def __init__(self, name: str = "emsbox test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def client(self, name: str = "emsbox-device") -> tuple[bytes, bytes]:
        """A client certificate (PEM, followed by this CA's) and its private key (PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM) + self.pem, _key_pem(key)


@pytest.fixture(scope="module")
def authority():
    return Authority()


def _upload(api, kind, body, role="installer", **kwargs):
    return api.client.put(
        f"/api/v1/mqtt/files/{kind}", content=body, headers=api.headers(role), **kwargs
    )


# -- the settings --------------------------------------------------------------------------


def test_every_option_of_the_mqtt_settings_has_a_label_in_every_language():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / APP_I18N
    for code in LANGUAGES:
        text = json.loads((root / code / "settings.json").read_text(encoding="utf-8"))
        for enum in (MqttProfile, MqttProtocol, AzureAuth):
            for option in enum:
                assert f"settings.option.{enum.__name__}.{option.value}" in text, (code, option)


def test_the_mqtt_section_is_shown_off_by_default_with_secrets_redacted(api):
    mqtt = _config(api, "installer")["mqtt"]
    assert mqtt["enabled"] is False and mqtt["profile"] == "generic"
    assert (mqtt["port"], mqtt["tls"], mqtt["discovery"]) == (8883, True, False)
    # An empty secret hides nothing and is shown empty: the form tells "none" from "kept".
    assert mqtt["password"] == "" and mqtt["azure_device_key"] == ""
    key = "c2VjcmV0IGtleSBvZiB0aGUgZGV2aWNl"  # base64
    r = _put(api, _with_mqtt(_config(api), username="meter", password="s3cret pass"))
    assert r.status_code == 200, r.text
    r = _put(api, _with_mqtt(_config(api), azure_device_key=key))
    assert r.status_code == 200, r.text
    assert r.json()["config"]["mqtt"]["password"] == REDACTED
    for role in ("installer", "admin"):
        shown = _config(api, role)["mqtt"]
        assert (shown["password"], shown["azure_device_key"]) == (REDACTED, REDACTED)
        assert "s3cret" not in json.dumps(_config(api, role))
    saved = api.service.saved_config.mqtt
    assert saved.password.get_secret_value() == "s3cret pass"
    assert saved.azure_device_key.get_secret_value() == key
    assert stat.S_IMODE(api.service.config_path.stat().st_mode) == 0o600


def test_the_redacted_secrets_round_trip_and_can_be_replaced_or_removed(api):
    r = _put(api, _with_mqtt(_config(api), password="first secret"))
    assert r.status_code == 200, r.text
    # What GET gives, sent back unchanged (as the settings page does), keeps the secrets.
    shown = _config(api)
    assert shown["mqtt"]["password"] == REDACTED
    edited = _with_mqtt(shown, username="someone else")
    r = _put(api, edited)
    assert r.status_code == 200, r.text
    assert r.json()["restart_required"] is False
    saved = api.service.saved_config.mqtt
    assert saved.username == "someone else"
    assert saved.password.get_secret_value() == "first secret"
    assert 'password = "first secret"' in api.service.config_path.read_text()
    # A new value replaces the secret; an empty one removes it.
    assert _put(api, _with_mqtt(_config(api), password="second secret")).status_code == 200
    assert api.service.saved_config.mqtt.password.get_secret_value() == "second secret"
    assert _put(api, _with_mqtt(_config(api), password="")).status_code == 200
    assert api.service.saved_config.mqtt.password.get_secret_value() == ""
    assert _config(api)["mqtt"]["password"] == ""


@pytest.mark.parametrize(
    ("mqtt", "expected"),
    [
        ({"enabled": True}, {"mqtt.host": "the broker's host is needed"}),
        (
            {"enabled": True, "host": "broker.example", "client_cert_file": "mqtt/x.pem"},
            {
                "mqtt.client_cert_file": "give both or neither",
                "mqtt.client_key_file": "give both or neither",
            },
        ),
        (
            {"enabled": True, "host": "x-ats.iot.eu-west-1.amazonaws.com"}
            | {"profile": "aws_iot_core", "tls": False},
            {
                "mqtt.tls": "AWS IoT Core needs TLS",
                "mqtt.client_cert_file": "AWS IoT Core needs the device certificate",
                "mqtt.device_id": "the thing name is needed for AWS IoT Core",
            },
        ),
        (
            {"enabled": True, "host": "hub.azure-devices.net", "profile": "azure_iot_hub"}
            | {"device_id": "meter-1", "protocol": "5", "discovery": True}
            | {"azure_device_key": ""},
            {
                "mqtt.protocol": "Azure IoT Hub's device endpoint speaks MQTT 3.1.1",
                "mqtt.discovery": "Home Assistant discovery needs a generic broker",
                "mqtt.azure_device_key": "the device key is needed for SAS sign-in",
            },
        ),
        (
            {"device_id": "meter/1", "topic_prefix": "a//b", "qos": 2, "port": 0},
            {
                "mqtt.device_id": "use letters, digits, '_', '-' and '.' only",
                "mqtt.topic_prefix": "use topic levels of letters, digits, '_', '-' and '.' "
                "separated by '/'",
                "mqtt.qos": "Input should be less than or equal to 1",
                "mqtt.port": "Input should be greater than or equal to 1",
            },
        ),
        (
            {"azure_device_key": "not base64!", "profile": "kafka"},
            {
                "mqtt.azure_device_key": "not a base64 key (copy the device's primary key)",
                "mqtt.profile": "Input should be 'generic', 'azure_iot_hub' or 'aws_iot_core'",
            },
        ),
    ],
    ids=["no-host", "cert-without-key", "aws", "azure", "fields", "key-and-profile"],
)
def test_invalid_mqtt_settings_are_refused_by_field_and_nothing_is_saved(api, mqtt, expected):
    before = _config(api)
    r = _put(api, _with_mqtt(before, **mqtt))
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == expected
    assert r.json()["problems"]  # one line per problem, as every refused configuration
    assert _config(api) == before


def test_a_certificate_file_that_is_missing_or_unusable_is_refused_and_nothing_saved(api):
    before = _config(api)
    on = {"enabled": True, "host": "127.0.0.1", "port": _closed_port(), "tls": True}
    r = _put(api, _with_mqtt(before, **on, ca_file="mqtt/none.pem"))
    assert r.status_code == 422, r.text
    assert set(r.json()["errors"]) == {"mqtt.ca_file"}
    assert "no file" in r.json()["errors"]["mqtt.ca_file"]
    assert "none.pem" in r.json()["errors"]["mqtt.ca_file"]
    # A file that is there but holds no certificate is refused too.
    garbage = api.service.data_dir / "not-a-ca.pem"
    garbage.write_text("hello\n")
    r = _put(api, _with_mqtt(before, **on, ca_file="not-a-ca.pem"))
    assert r.status_code == 422, r.text
    assert set(r.json()["errors"]) == {"mqtt.ca_file"}
    assert _config(api) == before
    assert api.service.saved_config.mqtt.enabled is False
    assert _mqtt_gateway(api)["detail"] == "off"


def _wait_for_failure(api, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while True:
        gateway = _mqtt_gateway(api)
        if gateway["detail"] != "connecting" and not gateway["detail"].startswith("connecting;"):
            return gateway
        assert time.monotonic() < deadline, gateway
        time.sleep(0.1)


def test_enabled_towards_a_closed_port_is_saved_at_once_and_reported_unhealthy(api):
    port = _closed_port()
    on = {"enabled": True, "host": "127.0.0.1", "port": port, "tls": False}
    r = _put(api, _with_mqtt(_config(api), **on))
    assert r.status_code == 200, r.text
    assert r.json()["restart_required"] is False  # the mqtt section applies while running
    assert r.json()["config"]["mqtt"]["enabled"] is True
    gateway = _wait_for_failure(api)
    assert gateway["enabled"] is True and gateway["healthy"] is False
    assert f"127.0.0.1:{port}" in gateway["detail"]
    assert "connection refused" in gateway["detail"]
    system = api.client.get("/api/v1/system", headers=api.headers("viewer")).json()
    assert system["restart_required"] is False
    assert any(p["name"] == "MQTT" and not p["healthy"] for p in system["parts"])
    assert api.client.get("/api/v1/health").json()["status"] == "degraded"
    _turn_off(api)


# -- the certificate files -------------------------------------------------------------------


def test_a_ca_certificate_is_checked_kept_and_listed(api, authority):
    r = _upload(api, "ca", authority.pem)
    assert r.status_code == 200, r.text
    stored = r.json()
    assert stored["path"] == "mqtt/ca.pem" and stored["setting"] == "mqtt.ca_file"
    assert (stored["kind"], stored["name"], stored["size"]) == ("ca", "ca.pem", len(authority.pem))
    assert (stored["certificates"], stored["subject"]) == (1, "CN=emsbox test CA")
    assert dt.datetime.fromisoformat(stored["not_after"]) == authority.cert.not_valid_after_utc
    path = api.service.data_dir / "mqtt" / "ca.pem"
    assert path.read_bytes() == authority.pem
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    listed = api.client.get("/api/v1/mqtt/files", headers=api.headers("installer")).json()
    assert stored in listed
    # Replaced whole by a second upload, with no temporary file left behind.
    other = Authority("another CA")
    assert _upload(api, "ca", other.pem).json()["subject"] == "CN=another CA"
    assert path.read_bytes() == other.pem
    assert sorted(p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")) == []
    assert _upload(api, "ca", authority.pem).status_code == 200


def test_a_client_certificate_and_key_are_kept_and_the_gateway_can_use_them(api, authority):
    chain, key = authority.client()
    r = _upload(api, "cert", chain)
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "mqtt/client-cert.pem"
    assert (r.json()["certificates"], r.json()["subject"]) == (2, "CN=emsbox-device")
    r = _upload(api, "key", key)
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "mqtt/client-key.pem" and r.json()["subject"] is None
    key_file = api.service.data_dir / "mqtt" / "client-key.pem"
    assert key_file.read_bytes() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert _upload(api, "ca", authority.pem).status_code == 200
    listed = api.client.get("/api/v1/mqtt/files", headers=api.headers("installer")).json()
    assert [(f["kind"], f["path"]) for f in listed] == [
        ("ca", "mqtt/ca.pem"),
        ("cert", "mqtt/client-cert.pem"),
        ("key", "mqtt/client-key.pem"),
    ]
    # The paths the uploads answered go in the settings as they are; the gateway loads them
    # (TLS context, certificate and key) before the settings are saved.
    paths = {f["setting"].removeprefix("mqtt."): f["path"] for f in listed}
    on = {"enabled": True, "host": "127.0.0.1", "port": _closed_port(), "tls": True}
    r = _put(api, _with_mqtt(_config(api), **on, **paths))
    assert r.status_code == 200, r.text
    assert api.service.saved_config.mqtt.client_key_file == "mqtt/client-key.pem"
    gateway = _wait_for_failure(api)
    assert gateway["enabled"] and not gateway["healthy"] and "refused" in gateway["detail"]
    # A key that does not belong to the certificate is caught when the settings are saved.
    _, stranger = authority.client("someone else")
    assert _upload(api, "key", stranger).status_code == 200
    r = _put(api, _with_mqtt(_config(api), username="again"))
    assert r.status_code == 422, r.text
    assert set(r.json()["errors"]) == {"mqtt.client_cert_file"}
    assert api.service.saved_config.mqtt.username != "again"
    assert _upload(api, "key", key).status_code == 200
    _turn_off(api)


def test_files_that_are_not_what_they_are_sent_as_are_refused(api, authority):
    chain, key = authority.client()
    for kind, body in (("ca", authority.pem), ("cert", chain), ("key", key)):
        assert _upload(api, kind, body).status_code == 200
    traditional = _key_pem(
        ec.generate_private_key(ec.SECP384R1()),
        serialization.BestAvailableEncryption(b"passphrase"),
        serialization.PrivateFormat.TraditionalOpenSSL,
    )
    refused = [
        ("ca", b"hello, world\n", "not a PEM file"),
        ("ca", b"", "not a PEM file"),
        ("ca", authority.cert.public_bytes(serialization.Encoding.DER), "not a PEM file"),
        ("ca", key, "private key"),
        ("cert", chain + key, "private key"),
        ("ca", b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "read"),
        ("key", authority.pem, "a certificate, not a private key"),
        ("key", b"garbage", "not a PEM file"),
        ("key", key + key, "exactly one private key"),
        (
            "key",
            _key_pem(
                ec.generate_private_key(ec.SECP256R1()),
                serialization.BestAvailableEncryption(b"passphrase"),
            ),
            "passphrase",
        ),
        ("key", traditional, "passphrase"),
        ("key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "read"),
    ]
    for kind, body, reason in refused:
        r = _upload(api, kind, body)
        assert r.status_code == 400, (kind, body[:40], r.text)
        detail = r.json()["detail"]
        assert reason in detail and "\n" not in detail, (kind, detail)
    # Nothing was replaced.
    directory = api.service.data_dir / "mqtt"
    assert (directory / "ca.pem").read_bytes() == authority.pem
    assert (directory / "client-cert.pem").read_bytes() == chain
    assert (directory / "client-key.pem").read_bytes() == key
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]
    r = _upload(api, "chain", authority.pem)
    assert r.status_code == 422 and "path.kind" in r.json()["detail"]


def test_an_oversized_file_is_refused_before_it_is_read_whole(api, authority):
    padding = b"# " + b"x" * 78 + b"\n"
    big = authority.pem + padding * (MAX_BYTES // len(padding) + 1)
    assert len(big) > MAX_BYTES
    r = _upload(api, "ca", big)
    assert r.status_code == 413 and "64 kB" in r.json()["detail"]
    # Without a length announced (chunked), it is cut off as it comes.
    chunks = [big[i : i + 16384] for i in range(0, len(big), 16384)]
    r = _upload(api, "ca", iter(chunks))
    assert r.status_code == 413
    # Just under the limit is fine.
    fits = authority.pem + padding * ((MAX_BYTES - len(authority.pem)) // len(padding))
    assert len(fits) <= MAX_BYTES
    assert _upload(api, "ca", fits).status_code == 200
    assert _upload(api, "ca", authority.pem).status_code == 200


def test_only_installers_and_admins_see_or_send_certificate_files(api, authority):
    for role, allowed in ((None, False), ("viewer", False), ("installer", True), ("admin", True)):
        listing = api.client.get("/api/v1/mqtt/files", headers=api.headers(role))
        upload = _upload(api, "ca", authority.pem, role)
        if allowed:
            assert (listing.status_code, upload.status_code) == (200, 200), role
        else:
            expected = 401 if role is None else 403
            assert (listing.status_code, upload.status_code) == (expected, expected), role


# -- the first-start wizard ------------------------------------------------------------------


@pytest.fixture
def fresh(tmp_path):
    def start(config=None):
        service = Service(validate(config or {}), tmp_path)
        service.start()
        started.append(service)
        client = TestClient(create_app(service), base_url="https://testserver")
        clients.append(client)
        return service, client.__enter__()

    started, clients = [], []
    try:
        yield start
    finally:
        for client in clients:
            client.__exit__(None, None, None)
        for service in started:
            service.stop()


ADMIN = {"name": "chief", "password": PASSWORD}


def test_the_wizard_offers_mqtt_off_and_keeps_it_off(fresh):
    service, client = fresh()
    defaults = client.get("/api/v1/setup").json()["defaults"]
    assert defaults["mqtt"] == {
        "enabled": False,
        "host": "",
        "port": 8883,
        "tls": True,
        "username": "",
        "password": "",
        "discovery": False,
    }
    # The wizard sends its defaults back when MQTT is left off.
    r = client.post("/api/v1/setup", json={"admin": ADMIN, **defaults})
    assert r.status_code == 201, r.text
    assert service.saved_config.mqtt.enabled is False
    assert next(g for g in service.gateways() if g.name == "MQTT").detail == "off"


def test_the_wizard_checks_and_applies_the_mqtt_answers(fresh):
    service, client = fresh()
    r = client.post("/api/v1/setup/check", json={"mqtt": {"enabled": True}})
    assert r.json()["errors"] == {"mqtt.host": "the broker's host is needed"}
    r = client.post(
        "/api/v1/setup/check",
        json={"mqtt": {"enabled": True, "host": "broker", "client_id": "x", "qos": 1}},
    )
    assert r.json()["errors"] == {
        "mqtt.client_id": "not a setting of the setup",
        "mqtt.qos": "not a setting of the setup",
    }
    r = client.post("/api/v1/setup/check", json={"mqtt": {"port": 70000}})
    assert r.json()["errors"] == {"mqtt.port": "Input should be less than or equal to 65535"}
    port = _closed_port()
    mqtt = {"enabled": True, "host": "127.0.0.1", "port": port, "tls": False}
    mqtt |= {"username": "ems", "password": "broker pass", "discovery": True}
    assert client.post("/api/v1/setup/check", json={"mqtt": mqtt}).json() == {"errors": {}}
    r = client.post("/api/v1/setup", json={"admin": ADMIN, "mqtt": mqtt})
    assert r.status_code == 201, r.text
    saved = service.saved_config.mqtt
    assert (saved.enabled, saved.host, saved.port, saved.tls) == (True, "127.0.0.1", port, False)
    assert (saved.username, saved.password.get_secret_value()) == ("ems", "broker pass")
    assert saved.discovery is True
    (gateway,) = [g for g in service.gateways() if g.name == "MQTT"]
    assert gateway.enabled is True
    # Logged in as the new admin, the settings show the password redacted.
    assert client.get("/api/v1/config").json()["mqtt"]["password"] == REDACTED


def test_a_password_stored_before_the_setup_is_neither_shown_nor_lost(fresh):
    service, client = fresh({"mqtt": {"username": "ems", "password": "provisioned"}})
    defaults = client.get("/api/v1/setup").json()["defaults"]
    assert defaults["mqtt"]["password"] == REDACTED
    assert "provisioned" not in client.get("/api/v1/setup").text
    r = client.post("/api/v1/setup", json={"admin": ADMIN, "mqtt": defaults["mqtt"]})
    assert r.status_code == 201, r.text
    assert service.saved_config.mqtt.password.get_secret_value() == "provisioned"


def test_uploading_the_right_ca_reconnects_at_once_without_saving_again(api, tmp_path):
    from emsbox.testing.certificates import CertificateAuthority
    from emsbox.testing.mosquitto import Broker, BrokerTls

    ca = CertificateAuthority(tmp_path / "ca")
    server = ca.issue("server", "localhost", server=True)
    broker = Broker(tmp_path / "broker", tls=BrokerTls(ca.cert, server.cert, server.key)).start()
    try:
        # Set up with the wrong CA file: the broker's certificate is not trusted.
        assert _upload(api, "ca", Authority("a wrong CA").pem).status_code == 200
        on = {"enabled": True, "host": "127.0.0.1", "port": broker.port, "ca_file": "mqtt/ca.pem"}
        assert _put(api, _with_mqtt(_config(api), **on)).status_code == 200
        gateway = _wait_for_failure(api)
        assert "not trusted" in gateway["detail"]
        # The right one, sent under the same name, is used at once.
        assert _upload(api, "ca", ca.cert.read_bytes()).status_code == 200
        deadline = time.monotonic() + 15
        while not (gateway := _mqtt_gateway(api))["healthy"]:
            assert time.monotonic() < deadline, gateway
            time.sleep(0.1)
        assert gateway["detail"].startswith(f"connected to 127.0.0.1:{broker.port}")
    finally:
        _turn_off(api)
        broker.stop()
