"""TLS, mutual TLS and the cloud profiles (Azure IoT Hub, AWS IoT Core), each against a local
Mosquitto configured the way that cloud is: TLS 1.2, a client certificate or a SAS token."""

from __future__ import annotations

import base64

from mqtt_support import Subscriber

from emsbox.gateways.mqtt import azure
from emsbox.gateways.mqtt.config import MqttConfig
from emsbox.testing.certificates import CertificateAuthority
from emsbox.testing.mosquitto import Broker, BrokerTls, write_password_file

KEY = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
FIXED_NOW = 1_800_000_000.0


def tls_broker(tmp_path, ca, *, require_certificate=False, identity=False, password_file=None):
    server = ca.issue("server", "localhost", server=True)
    tls = BrokerTls(ca.cert, server.cert, server.key, require_certificate, identity)
    return Broker(tmp_path / "tls-broker", tls=tls, password_file=password_file).start()


def tls_subscriber(broker, ca, topic, client=None):
    """A subscriber over TLS (with a client certificate when the broker asks for one)."""
    files = {"ca_certs": str(ca.cert)}
    if client is not None:
        files |= {"certfile": str(client.cert), "keyfile": str(client.key)}
    return Subscriber(broker, topic, client_id="observer", **files)


def settings(broker, **more) -> MqttConfig:
    base = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": broker.port,
        "device_id": "dev1",
        "state_interval_s": 1.0,
        "reconnect_max_s": 1.0,
    }
    return MqttConfig.model_validate(base | more)


def test_tls_with_the_brokers_ca_file(tmp_path, ca, harness):
    broker = tls_broker(tmp_path, ca)
    try:
        sub = tls_subscriber(broker, ca, "emsbox/dev1/#")
        harness.apply(settings(broker, ca_file=str(ca.cert)))
        harness.wait_connected()
        harness.measure(2)
        assert sub.wait_for("emsbox/dev1/main/state")[-1].json()["load"] == "main"
        sub.close()
    finally:
        broker.stop()


def test_a_broker_whose_certificate_is_not_trusted_is_refused(tmp_path, ca, harness):
    stranger = CertificateAuthority(tmp_path / "other-ca", "another CA")
    broker = tls_broker(tmp_path, stranger)
    try:
        harness.apply(settings(broker, ca_file=str(ca.cert)))
        status = harness.wait_status(lambda s: s.last_error is not None)
        assert not status.connected
        assert "certificate is not trusted" in status.last_error
        harness.measure(2)
        assert not harness.gateway.status().connected
        assert "dev1" not in broker.log().split("New client connected", 1)[-1]
    finally:
        broker.stop()


def test_the_system_store_does_not_trust_a_private_ca(tmp_path, ca, harness):
    broker = tls_broker(tmp_path, ca)
    try:
        harness.apply(settings(broker))  # no ca_file: the system's authorities
        status = harness.wait_status(lambda s: s.last_error is not None)
        assert "certificate is not trusted" in status.last_error
    finally:
        broker.stop()


def test_mutual_tls_needs_the_client_certificate(tmp_path, ca, harness):
    broker = tls_broker(tmp_path, ca, require_certificate=True)
    client = ca.issue("client", "dev1", server=False)
    try:
        harness.apply(settings(broker, ca_file=str(ca.cert)))
        status = harness.wait_status(lambda s: s.last_error is not None)
        assert not status.connected
        sub = tls_subscriber(broker, ca, "emsbox/dev1/#", client)
        harness.apply(
            settings(
                broker,
                ca_file=str(ca.cert),
                client_cert_file=str(client.cert),
                client_key_file=str(client.key),
            )
        )
        harness.wait_connected()
        harness.measure(2)
        assert sub.wait_for("emsbox/dev1/main/state")
        sub.close()
    finally:
        broker.stop()


def test_certificate_files_relative_to_the_data_directory(tmp_path, ca, harness):
    broker = tls_broker(tmp_path, ca)
    (harness.directory / "mqtt").mkdir()
    (harness.directory / "mqtt" / "ca.pem").write_bytes(ca.cert.read_bytes())
    try:
        harness.apply(settings(broker, ca_file="mqtt/ca.pem"))
        harness.wait_connected()
    finally:
        broker.stop()


def test_azure_iot_hub_with_a_sas_token(tmp_path, ca):
    from mqtt_support import Harness

    host = "127.0.0.1"
    user = azure.username(host, "dev1")
    token = azure.sas_token(host, "dev1", KEY, int(FIXED_NOW) + 3600)
    logins = {user: token, "observer": "secret"}
    broker = tls_broker(tmp_path, ca, password_file=write_password_file(tmp_path / "pw", logins))
    # The token's expiry follows the clock: a fixed clock gives the token the broker knows.
    harness = Harness(tmp_path / "emsbox", clock=lambda: FIXED_NOW)
    events = "devices/dev1/messages/events/"
    try:
        sub = Subscriber(
            broker,
            events + "#",
            client_id="observer",
            login=("observer", "secret"),
            ca_certs=str(ca.cert),
        )
        config = settings(
            broker, profile="azure_iot_hub", ca_file=str(ca.cert), azure_device_key=KEY
        )
        harness.apply(config)
        harness.wait_connected()
        harness.measure(3)
        state = sub.wait_for(events + "#", where=lambda m: m.topic.endswith("type=state&load=main"))
        assert state[-1].json()["load"] == "main" and not state[-1].retain
        record = sub.wait_for(events + "#", where=lambda m: "type=record" in m.topic)[0]
        assert record.json()["seq"] == 1
        assert sub.wait_for(events + "type=status")[0].payload == b"online"
        assert f"as dev1 (p2, c1, k60, u'{user}')" in broker.log()
        sub.close()
        other_key = base64.b64encode(b"another key of 32 bytes length!!").decode()
        harness.apply(settings(broker, **(config.model_dump() | {"azure_device_key": other_key})))
        status = harness.wait_status(lambda s: s.last_error is not None)
        assert not status.connected and "refused the connection" in status.last_error
    finally:
        harness.close()
        broker.stop()


def test_azure_iot_hub_with_an_x509_certificate(tmp_path, ca, harness):
    broker = tls_broker(tmp_path, ca, require_certificate=True, identity=True)
    device = ca.issue("device", "dev1", server=False)
    events = "devices/dev1/messages/events/"
    try:
        sub = tls_subscriber(broker, ca, events + "#", ca.issue("observer", "observer", False))
        harness.apply(
            settings(
                broker,
                profile="azure_iot_hub",
                azure_auth="x509",
                ca_file=str(ca.cert),
                client_cert_file=str(device.cert),
                client_key_file=str(device.key),
            )
        )
        harness.wait_connected()
        harness.measure(3)
        state = sub.wait_for(events + "#", where=lambda m: m.topic.endswith("type=state&load=hvac"))
        assert state[-1].json()["device"] == "dev1"
        assert "as dev1 (p2, c1, k60, u'dev1')" in broker.log()
        sub.close()
    finally:
        broker.stop()


def test_aws_iot_core_with_the_device_certificate(tmp_path, ca, harness):
    broker = tls_broker(tmp_path, ca, require_certificate=True, identity=True)
    thing = ca.issue("thing", "thing-1", server=False)
    try:
        harness.apply(
            settings(
                broker,
                profile="aws_iot_core",
                device_id="thing-1",
                ca_file=str(ca.cert),
                client_cert_file=str(thing.cert),
                client_key_file=str(thing.key),
                username="ignored",
            )
        )
        harness.wait_connected()
        sub = tls_subscriber(broker, ca, "emsbox/thing-1/#", ca.issue("obs", "observer", False))
        harness.measure(3)
        state = sub.wait_for("emsbox/thing-1/main/state")[-1].json()
        assert all(not isinstance(v, dict | list) for v in state.values())  # flat, for rules
        record = sub.wait_for("emsbox/thing-1/main/record")[0].json()
        assert record["seq"] >= 1 and record["device"] == "thing-1"
        # The client id is the thing name, and no user name is sent: the certificate is the
        # identity (the broker logs the certificate's name as the user).
        assert "as thing-1 (p2, c1, k60, u'thing-1')" in broker.log()
        sub.close()
    finally:
        broker.stop()
