"""One MQTT connection, over paho-mqtt (the only module that imports it).

A ``Connection`` is one session with the broker: made, used and closed by one thread, which
drives the network with ``poll``. A lost connection is not resumed: the gateway makes a new
``Connection`` and publishes again what was not acknowledged, from its own on-disk outbox,
because paho keeps unacknowledged messages in memory only (shared PITFALLS.md).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

# Messages sent but not yet acknowledged: enough to keep a local broker busy.
MAX_INFLIGHT = 500
# paho numbers messages 1…65535 and then starts again, acknowledged or not (the callback of a
# QoS 0 message carries its number too): a session whose oldest QoS 1 message has waited this
# many publishes is given up before a number could come round to it.
MAX_PUBLISHES_UNACKNOWLEDGED = 30_000


class MqttError(Exception):
    """The connection cannot be made or was lost; the message is one line for the user."""


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of a TLS connection (None: the system's authorities / no client cert)."""

    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None
    check_hostname: bool


@dataclass(frozen=True)
class Will:
    """The last will: published by the broker when the connection drops without a goodbye."""

    topic: str
    payload: str
    retain: bool


@dataclass(frozen=True)
class ConnectSettings:
    """Everything needed to open a session."""

    host: str
    port: int
    client_id: str
    mqtt5: bool
    username: str | None
    password: str | None
    tls: TlsFiles | None
    keepalive_s: int
    will: Will | None


def tls_context(files: TlsFiles) -> ssl.SSLContext:
    """A client TLS context: TLS 1.2 or later, the broker's certificate checked.

    Raises MqttError naming the file that cannot be used.
    """
    try:
        context = ssl.create_default_context(
            cafile=str(files.ca_file) if files.ca_file is not None else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise MqttError(f"CA file {files.ca_file}: {_reason(exc)}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = files.check_hostname
    if files.cert_file is not None:
        try:
            context.load_cert_chain(
                str(files.cert_file), str(files.key_file) if files.key_file else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise MqttError(
                f"client certificate {files.cert_file} / key {files.key_file}: {_reason(exc)}"
            ) from None
    return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the broker's certificate is not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker running, and is this its port?)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer (timed out)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


class Connection:
    """One session: ``open``, then ``publish``/``subscribe`` and ``poll`` on one thread."""

    def __init__(
        self, settings: ConnectSettings, on_message: Callable[[str, bytes, bool], None]
    ) -> None:
        self.settings = settings
        self._on_message = on_message
        self._acked: list[int] = []
        self._published_count = 0
        self._awaiting: dict[int, int] = {}  # QoS 1 message id: publishes before it was sent
        self._refusals: set[str] = set()  # reasons the broker gave for refusing a message
        self._connack: ReasonCode | None = None
        self._lost: str | None = None
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=paho.MQTTv5 if settings.mqtt5 else paho.MQTTv311,
            clean_session=None if settings.mqtt5 else True,
        )
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.max_queued_messages_set(0)
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls is not None:
            client.tls_set_context(tls_context(settings.tls))
            client.tls_insecure_set(not settings.tls.check_hostname)
        if settings.will is not None:
            client.will_set(settings.will.topic, settings.will.payload, 1, settings.will.retain)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_publish = self._published
        client.on_message = self._message
        self._client = client

    # paho's callbacks (run inside poll, on the caller's thread)

    def _connected(self, _c: object, _u: object, _f: object, code: ReasonCode, _p: object) -> None:
        self._connack = code

    def _disconnected(
        self, _c: object, _u: object, _f: object, code: ReasonCode, _p: object
    ) -> None:
        self._lost = f"connection lost ({code})" if code.is_failure else "disconnected"

    def _published(self, _c: object, _u: object, mid: int, code: object, _p: object) -> None:
        if self._awaiting.pop(mid, None) is None:
            return  # a QoS 0 message went out: nothing to acknowledge
        if isinstance(code, ReasonCode) and code.is_failure and str(code) not in self._refusals:
            # MQTT 5 brokers say why they refuse a message (not authorised, quota exceeded):
            # sending it again would change nothing, so it counts as answered, but said once.
            self._refusals.add(str(code))
            log.warning("mqtt: the broker refused a message: %s", code)
        self._acked.append(mid)

    def _message(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        self._on_message(message.topic, bytes(message.payload), bool(message.retain))

    # the session

    def open(self, timeout_s: float) -> None:
        """Connect and wait for the broker's acceptance; MqttError with the reason if not."""
        s = self.settings
        self._client.connect_timeout = timeout_s
        try:
            self._client.connect(s.host, s.port, keepalive=s.keepalive_s)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise MqttError(f"cannot connect to {s.host}:{s.port}: {_reason(exc)}") from None
        deadline = time.monotonic() + timeout_s
        while self._connack is None:
            if time.monotonic() > deadline:
                self.drop()
                raise MqttError(f"{s.host}:{s.port}: no answer to CONNECT (is it a broker?)")
            try:
                self.poll(0.05)
            except MqttError as exc:
                # A broker that refuses answers CONNACK and closes: report the refusal.
                if self._connack is None:
                    raise MqttError(f"{s.host}:{s.port}: {exc}") from None
        if self._connack.is_failure:
            self._client.disconnect()
            raise MqttError(f"{s.host}:{s.port} refused the connection: {self._connack}")

    def poll(self, timeout_s: float) -> None:
        """Move data in and out for up to ``timeout_s``; MqttError once the session is lost."""
        if self._lost is not None:
            raise MqttError(self._lost)
        try:
            rc = self._client.loop(timeout_s)
        except (OSError, ssl.SSLError) as exc:
            self._lost = f"connection lost: {_reason(exc)}"
            rc = MQTTErrorCode.MQTT_ERR_CONN_LOST
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._lost = self._lost or f"connection lost ({paho.error_string(rc)})"
            raise MqttError(self._lost)

    def publish(self, topic: str, payload: str | bytes, qos: int, retain: bool) -> int:
        """Queue a message; its id (reported by ``acknowledged`` once the broker has it, for
        QoS 1). MqttError if the session is lost."""
        if self._awaiting:
            oldest = next(iter(self._awaiting.values()))  # ids are kept in sending order
            if self._published_count - oldest >= MAX_PUBLISHES_UNACKNOWLEDGED:
                self._lost = "connection lost (no acknowledgement from the broker)"
                raise MqttError(self._lost)
        info = self._client.publish(topic, payload, qos, retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError(f"cannot publish: {paho.error_string(info.rc)}")
        if qos > 0:
            self._awaiting[int(info.mid)] = self._published_count
        self._published_count += 1
        return int(info.mid)

    def subscribe(self, topic: str) -> None:
        """Subscribe to ``topic`` with QoS 1."""
        rc, _mid = self._client.subscribe(topic, 1)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError(f"cannot subscribe to {topic}: {paho.error_string(rc)}")

    def acknowledged(self) -> list[int]:
        """Ids of the messages the broker acknowledged since the last call."""
        acked, self._acked = self._acked, []
        return acked

    @property
    def pending_writes(self) -> bool:
        """Whether messages wait to be written to the socket."""
        return bool(self._client.want_write())

    def drop(self) -> None:
        """Close the socket without a goodbye (after an error)."""
        with contextlib.suppress(OSError, ssl.SSLError):
            sock = self._client.socket()
            if sock is not None:
                sock.close()

    def close(self, last: tuple[str, str, bool] | None = None, timeout_s: float = 2.0) -> None:
        """Publish ``last`` (topic, payload, retain), send what waits, and disconnect."""
        if self._lost is None:
            try:
                if last is not None:
                    self.publish(last[0], last[1], 1, last[2])
                deadline = time.monotonic() + timeout_s
                while self._client.want_write() and time.monotonic() < deadline:
                    self.poll(0.05)
                self._client.disconnect()
                self._client.loop(0.05)
            except (MqttError, OSError, ssl.SSLError):
                pass  # the broker went away meanwhile: it sends the last will instead
