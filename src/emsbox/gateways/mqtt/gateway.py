"""The MQTT gateway: one thread that keeps a session with the broker and publishes.

Each session: the birth message ("online", retained; the last will says "offline"), Home
Assistant discovery, the command subscription, then a loop that publishes each load's live
state when due and drains the outbox: records are read from the store after the last one
sent, published with QoS 1, and acknowledged to the store as the broker acknowledges them,
in order (``_InFlight``). A lost session is given up whole; the next one, after a randomised
exponential back-off, starts again from the oldest record not acknowledged, so a record may
arrive twice (the receiver drops it by its ``seq``) but is never lost.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from emsbox.bus import Bus, Reading, Subscription
from emsbox.gateways.errors import SetupError
from emsbox.gateways.mqtt import azure, discovery
from emsbox.gateways.mqtt.alarm_queue import ALARM_QUEUE_FILE, AlarmQueue
from emsbox.gateways.mqtt.client import (
    Connection,
    ConnectSettings,
    MqttError,
    TlsFiles,
    Will,
    tls_context,
)
from emsbox.gateways.mqtt.commands import (
    CommandError,
    MqttCommand,
    parse_command,
    request_id,
    result_json,
)
from emsbox.gateways.mqtt.config import AzureAuth, MqttConfig, MqttProfile, MqttProtocol
from emsbox.gateways.mqtt.discovery import DeviceInfo
from emsbox.gateways.mqtt.discovery_state import DiscoveryState
from emsbox.gateways.mqtt.payloads import record_payload, state_json, state_values, variable_text
from emsbox.gateways.mqtt.topics import HA_STATUS, STATUS_OFFLINE, STATUS_ONLINE, Topics

log = logging.getLogger(__name__)

NAME = "MQTT"
CONNECT_TIMEOUT_S = 10.0
POLL_S = 0.02
BACKOFF_FIRST_S = 1.0
STABLE_SESSION_S = 30.0  # a session that lasted this long resets the back-off
OUTBOX_WINDOW = 400  # records sent and not yet acknowledged
OUTBOX_IDLE_QUERY_S = 1.0  # how often an empty outbox is looked at without being told
# A state is due this much before its interval is over, so that readings arriving every
# second are published every second rather than every other one.
STATE_EARLY_S = 0.25
DISCOVERY_FILE = "mqtt-discovery.json"
MAX_ALARMS_WAITING = 1000
ALARMS_IN_FLIGHT = 50  # alarm events published and not yet acknowledged, at most

# (load, action, tariff, requested_by) → the result of the command.
Commander = Callable[[str, str, int | None, str], "Future[object]"]
# (on, requested_by) → the result; raises with the reason when the output cannot be switched.
OutputSwitch = Callable[[bool, str], Mapping[str, object]]


class OutboxCounts(Protocol):
    """What the gateway reports of the outbox."""

    @property
    def records(self) -> int:
        """Records waiting."""

    @property
    def dropped(self) -> int:
        """Records dropped because the outbox was full."""


class Outbox(Protocol):
    """The store's outbox of logged records, as the gateway uses it."""

    outbox_filled: threading.Event

    def set_outbox(self, max_records: int | None) -> None:
        """Start (with a bound) or stop putting logged records in the outbox."""

    def outbox_pending(self, after_seq: int, limit: int) -> list[tuple[int, str]]:
        """Records numbered above ``after_seq``, oldest first."""

    def acknowledge(self, seq: int) -> None:
        """Every record up to ``seq`` was delivered."""

    def outbox_stats(self) -> OutboxCounts:
        """Records waiting and dropped."""


@dataclass(frozen=True)
class MqttStatus:
    """The gateway's state, for health reports and tests."""

    enabled: bool
    connected: bool
    detail: str
    records_sent: int
    records_waiting: int
    records_dropped: int
    last_error: str | None


def backoff_s(failures: int, limit_s: float, rng: random.Random) -> float:
    """The wait before attempt ``failures + 1``: doubling from 1 s up to ``limit_s``, each
    drawn between half and all of that so that many devices do not return in step."""
    ceiling = min(limit_s, BACKOFF_FIRST_S * 2.0 ** min(failures, 30))
    return rng.uniform(ceiling / 2.0, ceiling)


class _InFlight:
    """Records sent and not yet acknowledged, and how far they are acknowledged in order."""

    def __init__(self) -> None:
        self._by_mid: dict[int, int] = {}
        self._order: deque[int] = deque()
        self._done: set[int] = set()
        self.acknowledged_through: int | None = None

    def __len__(self) -> int:
        return len(self._by_mid)

    def sent(self, mid: int, seq: int) -> None:
        self._by_mid[mid] = seq
        self._order.append(seq)

    def acked(self, mid: int) -> bool:
        """Note an acknowledgement; True if records are now acknowledged further in order."""
        seq = self._by_mid.pop(mid, None)
        if seq is None:
            return False
        self._done.add(seq)
        moved = False
        while self._order and self._order[0] in self._done:
            self.acknowledged_through = self._order.popleft()
            self._done.discard(self.acknowledged_through)
            moved = True
        return moved


def _path(data_dir: Path, name: str) -> Path | None:
    if not name:
        return None
    path = Path(name)
    return path if path.is_absolute() else data_dir / path


class MqttGateway:
    """Publishes to one broker as configured; ``apply`` switches settings while running."""

    def __init__(
        self,
        bus: Bus,
        outbox: Outbox,
        data_dir: Path,
        commander: Commander | None = None,
        *,
        clock: Callable[[], float] = time.time,
        switch_output: OutputSwitch | None = None,
    ) -> None:
        self._bus = bus
        self._switch_output = switch_output
        self._outbox = outbox
        self._data_dir = data_dir
        self._commander = commander
        self._clock = clock
        self._lock = threading.Lock()
        self._config = MqttConfig()
        self._loads: tuple[str, ...] = ()
        self._info = DeviceInfo("emsbox", "emsbox", "")
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._connected = False
        self._detail = "off"
        self._last_error: str | None = None
        self._records_sent = 0
        self._discovery = DiscoveryState(data_dir / DISCOVERY_FILE)
        self._resume_after = 0  # every record up to this one was acknowledged
        # Alarm events waiting to be published, on disk until the broker has them.
        self._alarms = AlarmQueue(data_dir / ALARM_QUEUE_FILE, MAX_ALARMS_WAITING)
        self._rng = random.Random()

    # -- control -----------------------------------------------------------------------------

    def apply(self, config: MqttConfig, loads: list[str], info: DeviceInfo) -> None:
        """Run with ``config`` from now on (restarting the session if anything changed).

        SetupError, leaving what ran running, when a file it names cannot be used.
        """
        self.check(config)
        with self._lock:
            same = (config, tuple(loads), info) == (self._config, self._loads, self._info)
            running = self._thread is not None
        if same and running == config.enabled:
            return
        self._stop_thread()
        self._outbox.set_outbox(
            config.outbox_max_records if config.enabled and config.publish_records else None
        )
        with self._lock:
            self._config, self._loads, self._info = config, tuple(loads), info
            self._connected = False
            self._detail = "connecting" if config.enabled else "off"
            self._last_error = None
        if config.enabled:
            self._start_thread()

    def restart(self) -> None:
        """A new session with the same settings, e.g. after a file they name was replaced."""
        with self._lock:
            enabled = self._config.enabled
        if enabled:
            self._stop_thread()
            self._set(False, "connecting")
            self._start_thread()

    def _start_thread(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()

    def check(self, config: MqttConfig) -> None:
        """SetupError if ``config`` is enabled and names a file that cannot be used."""
        if not config.enabled:
            return
        for key in ("ca_file", "client_cert_file", "client_key_file"):
            path = _path(self._data_dir, getattr(config, key))
            if path is not None and not path.is_file():
                raise SetupError(f"mqtt.{key}", f"no file {path}")
        if config.tls:
            files = self._tls_files(config)
            only_ca = TlsFiles(files.ca_file, None, None, files.check_hostname)
            for key, tried in (("ca_file", only_ca), ("client_cert_file", files)):
                try:
                    tls_context(tried)
                except MqttError as exc:
                    raise SetupError(f"mqtt.{key}", str(exc)) from None

    def _tls_files(self, config: MqttConfig) -> TlsFiles:
        return TlsFiles(
            _path(self._data_dir, config.ca_file),
            _path(self._data_dir, config.client_cert_file),
            _path(self._data_dir, config.client_key_file),
            config.tls_check_hostname,
        )

    def stop(self) -> None:
        """Say "offline", disconnect and stop (the outbox keeps what was not delivered)."""
        self._stop_thread()
        with self._lock:
            self._detail = "off"

    def _stop_thread(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(CONNECT_TIMEOUT_S + 5.0)
        self._thread = None

    def status(self) -> MqttStatus:
        """Connected or not, what is happening, and the outbox's counts."""
        stats = self._outbox.outbox_stats()
        with self._lock:
            return MqttStatus(
                self._config.enabled,
                self._connected,
                self._detail,
                self._records_sent,
                stats.records,
                stats.dropped,
                self._last_error,
            )

    def notify_alarm(self, event: Mapping[str, object]) -> None:
        """Publish an alarm event on the alarm topic (QoS 1) when enabled; kept on disk until
        the broker has acknowledged it, through outages and restarts (the newest
        MAX_ALARMS_WAITING)."""
        with self._lock:
            enabled = self._config.enabled
        if enabled:
            try:
                self._alarms.add(event)
            except ValueError as exc:  # not JSON (a NaN): nothing a broker could take
                log.error("mqtt: alarm event %r not published: %s", event.get("name"), exc)

    def device_id(self) -> str:
        """The device id in use (the configured one, else the default)."""
        with self._lock:
            return self._config.device_id or self._info.device_id

    def topic_root(self) -> str:
        """Where this device's topics start (``emsbox/<device>``, Azure's events topic)."""
        with self._lock:
            config = self._config
        return Topics.of(config, self.device_id()).base

    # -- the session thread --------------------------------------------------------------------

    def _set(self, connected: bool, detail: str, error: str | None = None) -> None:
        with self._lock:
            self._connected = connected
            self._detail = detail
            if error is not None:
                self._last_error = error

    def _run(self) -> None:
        with self._lock:
            config, loads, info = self._config, self._loads, self._info
        device_id = config.device_id or info.device_id
        topics = Topics.of(config, device_id)
        sub = self._bus.subscribe(maxlen=256)
        failures = 0
        # Records after this one are sent next: those acknowledged are deleted from the outbox
        # only at the store's next commit, and need not go again.
        resume_after = self._resume_after
        try:
            while not self._stop.is_set():
                plan = _Plan(config, topics, loads, info)
                session = _Session(self, plan, sub, resume_after)
                try:
                    session.connect()
                except Exception as exc:  # whatever happens, the thread retries
                    why = _why(exc)
                    wait = backoff_s(failures, config.reconnect_max_s, self._rng)
                    failures += 1
                    log.warning("mqtt: %s; %s", why, _retrying_in(wait))
                    self._set(False, f"{why}; {_retrying_in(wait)}", why)
                    session.abandon()
                    self._stop.wait(wait)
                    continue
                self._set(True, f"connected to {config.host}:{config.port}")
                log.info("mqtt: connected to %s:%d as %s", config.host, config.port, device_id)
                started = time.monotonic()
                try:
                    session.serve(self._stop)
                except Exception as exc:
                    why = _why(exc)
                    session.abandon()
                    # A broker that accepts and drops again at once is not retried in a
                    # tight loop: only a session that lasted starts the back-off afresh.
                    lasted = time.monotonic() - started >= STABLE_SESSION_S
                    failures = 0 if lasted else failures + 1
                    wait = backoff_s(failures, config.reconnect_max_s, self._rng) / 2.0
                    log.warning("mqtt: %s; %s", why, _retrying_in(wait))
                    self._set(False, f"{why}; {_retrying_in(wait)}", why)
                    self._stop.wait(wait)
                resume_after = self._resume_after = session.resume_after()
        finally:
            self._bus.unsubscribe(sub)
            self._set(False, "off")

    def _sent(self, count: int) -> None:
        with self._lock:
            self._records_sent += count


@dataclass(frozen=True)
class _Plan:
    """What a run of the gateway's thread works with."""

    config: MqttConfig
    topics: Topics
    loads: tuple[str, ...]
    info: DeviceInfo


class _Session:
    """One connection's work (runs on the gateway's thread)."""

    def __init__(
        self, gateway: MqttGateway, plan: _Plan, sub: Subscription, resume_after: int
    ) -> None:
        self.g = gateway
        self.config = plan.config
        self.topics = plan.topics
        self.loads = plan.loads
        self.info = plan.info
        self.sub = sub
        self.inflight = _InFlight()
        self.sent_through = resume_after
        self._start_after = resume_after
        self.conn: Connection | None = None
        self.last_state: dict[str, float] = {}
        self.discovered: set[str] = set()
        self.results: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.outbox_backlog = True
        self.last_query = 0.0
        self.alarm_mids: dict[int, int] = {}  # message id: alarm event id, until acknowledged
        self.alarms_sent_through = 0
        gateway._alarms.added.set()  # a new session sends what earlier ones could not

    # connecting

    def _settings(self) -> ConnectSettings:
        c = self.config
        retain = not self.topics.azure
        will = Will(self.topics.status(), STATUS_OFFLINE, retain)
        username: str | None = c.username or None
        password: str | None = c.password.get_secret_value() or None
        if c.profile is MqttProfile.AZURE:
            username = azure.username(c.host, self.topics.device_id)
            password = None
            if c.azure_auth is AzureAuth.SAS:
                expiry = int(self.g._clock()) + c.azure_token_ttl_s
                key = c.azure_device_key.get_secret_value()
                password = azure.sas_token(c.host, self.topics.device_id, key, expiry)
        elif c.profile is MqttProfile.AWS:
            username = password = None  # the certificate is the identity
        return ConnectSettings(
            host=c.host,
            port=c.port,
            client_id=c.client_id or self.topics.device_id,
            mqtt5=c.protocol is MqttProtocol.V5,
            username=username,
            password=password,
            tls=self.g._tls_files(c) if c.tls else None,
            keepalive_s=c.keepalive_s,
            will=will,
        )

    def connect(self) -> None:
        """Open the session and say "online"; MqttError if it cannot."""
        conn = Connection(self._settings(), self._message)
        conn.open(CONNECT_TIMEOUT_S)
        self.conn = conn
        conn.publish(self.topics.status(), STATUS_ONLINE, 1, not self.topics.azure)
        if self.config.commands_enabled and self.g._commander is not None:
            conn.subscribe(self.topics.command())
        if self.config.discovery:
            conn.subscribe(f"{self.config.discovery_prefix}/{HA_STATUS}")
        self._tidy_discovery()

    def abandon(self) -> None:
        """Drop the connection after an error (the broker sends the last will)."""
        if self.conn is not None:
            self.conn.drop()

    def resume_after(self) -> int:
        """Where the next session starts sending: after the last record acknowledged."""
        done = self.inflight.acknowledged_through
        return done if done is not None else self._start_after

    # serving

    def serve(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set (then say "offline") or the session is lost."""
        assert self.conn is not None
        conn = self.conn
        for reading in self.g._bus.latest_all().values():
            self._state(reading, force=True)
        while not stop.is_set():
            conn.poll(POLL_S)
            self._acknowledged(conn)
            self._readings()
            if self.config.publish_records:
                self._drain_outbox(conn)
            while not self.results.empty():
                conn.publish(self.topics.command_result(), self.results.get(), 1, False)
            self._publish_alarms(conn)
        conn.close((self.topics.status(), STATUS_OFFLINE, not self.topics.azure))
        self._acknowledged(conn)

    def _acknowledged(self, conn: Connection) -> None:
        moved = False
        alarms_done: list[int] = []
        for mid in conn.acknowledged():
            event_id = self.alarm_mids.pop(mid, None)
            if event_id is not None:
                alarms_done.append(event_id)
            else:
                moved |= self.inflight.acked(mid)
        if moved and self.inflight.acknowledged_through is not None:
            self.g._outbox.acknowledge(self.inflight.acknowledged_through)
        if alarms_done:
            self.g._alarms.remove(alarms_done)

    def _publish_alarms(self, conn: Connection) -> None:
        """Publish the alarm events waiting on disk (each once per session: those not
        acknowledged go again in the next one)."""
        waiting = self.g._alarms
        room = ALARMS_IN_FLIGHT - len(self.alarm_mids)
        if room <= 0 or not waiting.added.is_set():
            return
        waiting.added.clear()
        events = waiting.pending(self.alarms_sent_through, room)
        if len(events) == room:
            waiting.added.set()  # more wait: look again once some are acknowledged
        for event_id, event in events:
            body = json.dumps({"device": self.topics.device_id, **event}, allow_nan=False)
            self.alarm_mids[conn.publish(self.topics.alarm(), body, 1, False)] = event_id
            self.alarms_sent_through = event_id

    def _readings(self) -> None:
        latest: dict[str, Reading] = {}
        for message in self.sub.drain():
            if isinstance(message, Reading):
                latest[message.load] = message
        for reading in latest.values():
            self._state(reading)

    def _state(self, reading: Reading, force: bool = False) -> None:
        assert self.conn is not None
        load = reading.load
        if self.loads and load not in self.loads:
            return
        last = self.last_state.get(load)
        due = last is None or reading.timestamp_s - last >= self.config.state_interval_s - (
            STATE_EARLY_S
        )
        if not (due or force):
            return
        self.last_state[load] = reading.timestamp_s
        c = self.config
        retain = c.retain_state and not self.topics.azure
        device_id = self.topics.device_id
        self.conn.publish(self.topics.state(load), state_json(reading, device_id), c.qos, retain)
        values = state_values(reading)
        if c.per_variable_topics:
            for name, value in values.items():
                topic = self.topics.variable(load, name)
                self.conn.publish(topic, variable_text(value), c.qos, retain)
        if c.discovery and load not in self.discovered:
            self._discover(load, reading.wiring.value, values)

    def _drain_outbox(self, conn: Connection) -> None:
        room = OUTBOX_WINDOW - len(self.inflight)
        if room < OUTBOX_WINDOW // 4:
            return
        filled = self.g._outbox.outbox_filled
        now = time.monotonic()
        if not (
            self.outbox_backlog or filled.is_set() or now - self.last_query > OUTBOX_IDLE_QUERY_S
        ):
            return
        filled.clear()
        self.last_query = now
        records = self.g._outbox.outbox_pending(self.sent_through, room)
        self.outbox_backlog = len(records) == room
        device_id = self.topics.device_id
        for seq, record in records:
            load = _load_of(record)
            mid = conn.publish(
                self.topics.record(load), record_payload(seq, device_id, record), 1, False
            )
            self.inflight.sent(mid, seq)
            self.sent_through = seq
        if records:
            self.g._sent(len(records))

    # discovery

    def _discover(self, load: str, wiring: str, values: Mapping[str, object]) -> None:
        assert self.conn is not None
        state = self.g._discovery
        messages = discovery.config_messages(
            self.config.discovery_prefix,
            DeviceInfo(self.topics.device_id, self.info.site, self.info.version),
            load=load,
            wiring=wiring,
            names=list(values),
            state_topic=self.topics.state(load),
            status_topic=self.topics.status(),
        )
        for topic in state.stale_for_load(load, set(messages)):
            self.conn.publish(topic, b"", 1, True)
        for topic, payload in messages.items():
            self.conn.publish(topic, payload, 1, True)
        state.published(load, set(messages))
        self.discovered.add(load)

    def _tidy_discovery(self) -> None:
        """Remove what an earlier run announced and this one does not (discovery turned off,
        loads removed)."""
        assert self.conn is not None
        state = self.g._discovery
        keep = set(self.loads) if self.config.discovery else set()
        for topic in state.stale_loads(keep):
            self.conn.publish(topic, b"", 1, True)
        state.forget_loads(keep)

    # commands and Home Assistant's birth message

    def _switch(self, command: MqttCommand) -> None:
        log.info("mqtt: command set_output %s (id %s)", command.on, command.id)
        self.results.put(_switched(self.g._switch_output, command))

    def _message(self, topic: str, payload: bytes, retained: bool) -> None:
        if self.config.discovery and topic == f"{self.config.discovery_prefix}/{HA_STATUS}":
            if payload == b"online":
                self.discovered.clear()  # Home Assistant restarted: announce again
                for reading in self.g._bus.latest_all().values():
                    self._state(reading, force=True)
            return
        self._command(topic, payload, retained)

    def _command(self, topic: str, payload: bytes, retained: bool) -> None:
        try:
            if retained:
                raise CommandError("retained commands are ignored (publish without retain)")
            command = parse_command(payload, self.loads)
        except CommandError as exc:
            log.warning("mqtt: command refused on %s: %s", topic, exc)
            self.results.put(result_json(request_id(payload), False, str(exc)))
            return
        if command.action == "set_output":
            self._switch(command)
            return
        commander = self.g._commander
        assert commander is not None
        log.info("mqtt: command %s on %s (id %s)", command.action, command.load, command.id)
        future = commander(command.load, command.verb, command.tariff, "mqtt")

        def answer(done: Future[object]) -> None:
            self.results.put(_outcome(command, done))

        future.add_done_callback(answer)


def _switched(switch: OutputSwitch | None, command: MqttCommand) -> str:
    """Switch the digital output as ``command`` asks; the answer to publish."""
    assert command.on is not None
    if switch is None:
        return result_json(command.id, False, "this device has no digital output", command)
    try:
        result = switch(command.on, "mqtt")
    except Exception as exc:  # the reason the output cannot be switched, for the sender
        log.warning("mqtt: set_output refused: %s", exc)
        return result_json(command.id, False, str(exc), command)
    return result_json(command.id, True, None, command, result)


def _retrying_in(wait_s: float) -> str:
    return f"retrying in {wait_s:.1f} s" if wait_s < 10.0 else f"retrying in {wait_s:.0f} s"


def _why(exc: Exception) -> str:
    """An error as one line; unexpected ones (bugs) are logged with their traceback."""
    if isinstance(exc, MqttError):
        return str(exc)
    log.exception("mqtt: unexpected error")
    return f"unexpected error: {type(exc).__name__}: {exc}"


def _outcome(command: MqttCommand, future: Future[object]) -> str:
    exc = future.exception()
    if exc is not None:
        log.warning("mqtt: command %s on %s failed: %s", command.action, command.load, exc)
        return result_json(command.id, False, str(exc), command)
    result = future.result()
    return result_json(
        command.id, True, None, command, result if isinstance(result, dict) else None
    )


def _load_of(record: str) -> str:
    """The load of an outbox record: its first member (the store writes it first)."""
    start = record.find('"load":"')
    if start < 0:
        return "unknown"
    start += len('"load":"')
    return record[start : record.find('"', start)]
