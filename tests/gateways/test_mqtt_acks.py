"""Which publishes count as acknowledged: QoS 1 ones the broker answered, never a QoS 0 one,
and a session whose broker stops answering is given up before message ids come round."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from emsbox.gateways.mqtt import client as mqtt_client
from emsbox.gateways.mqtt.client import Connection, ConnectSettings, MqttError


def settings(port: int) -> ConnectSettings:
    return ConnectSettings("127.0.0.1", port, "acks", False, None, None, None, 30, None)


def acknowledged_within(conn: Connection, seconds: float) -> list[int]:
    got: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn.poll(0.05)
        got += conn.acknowledged()
    return got


def test_only_qos_1_messages_the_broker_answered_are_acknowledged(broker):
    conn = Connection(settings(broker.port), lambda *_: None)
    conn.open(10.0)
    try:
        quiet = [conn.publish("t/zero", "x", 0, False) for _ in range(5)]
        assert acknowledged_within(conn, 0.5) == []
        sure = conn.publish("t/one", "x", 1, False)
        assert acknowledged_within(conn, 1.0) == [sure]
        assert sure not in quiet
    finally:
        conn.drop()


class SilentBroker:
    """Accepts one client, answers its CONNECT, then reads and never answers again."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        peer, _ = self.sock.accept()
        with peer:
            peer.recv(4096)  # CONNECT
            peer.sendall(bytes([0x20, 0x02, 0x00, 0x00]))  # CONNACK, accepted
            while peer.recv(65536):
                pass

    def close(self) -> None:
        self.sock.close()


def test_a_broker_that_stops_acknowledging_ends_the_session(monkeypatch):
    monkeypatch.setattr(mqtt_client, "MAX_PUBLISHES_UNACKNOWLEDGED", 200)
    silent = SilentBroker()
    conn = Connection(settings(silent.port), lambda *_: None)
    conn.open(10.0)
    try:
        conn.publish("t/one", "x", 1, False)
        with pytest.raises(MqttError, match="no acknowledgement"):
            for _ in range(400):
                conn.publish("t/zero", "x", 0, False)
                conn.poll(0.0)
        assert conn.acknowledged() == []
        with pytest.raises(MqttError):
            conn.poll(0.0)  # the session stays lost
    finally:
        conn.drop()
        silent.close()
