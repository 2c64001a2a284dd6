"""The composition root: configuration → sources, meter, bus, store, accounts and web server.

This is the one place that knows every part. ``Service`` owns them, starts and stops them in
order, and gives the web layer what it may use: the bus, the store, the accounts, the command
queue of each load and the health of every part.
"""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import cast

from emsbox import __version__
from emsbox.bus import Bus, Reading
from emsbox.config import CONFIG_FILE, Config, save_file
from emsbox.control.alarm_log import AlarmEvent
from emsbox.control.alarm_watch import AlarmNotice, AlarmStatus
from emsbox.control.config import IoBackend, IoConfig, ModbusInputTable
from emsbox.control.controller import Controller, IoState, open_builtin
from emsbox.control.io import DigitalIO
from emsbox.control.system_alarms import SYSTEM_PREFIX, SystemCondition
from emsbox.gateways.bacnet.server import BACNET, BacnetGateway
from emsbox.gateways.bacnet.server import Identity as BacnetIdentity
from emsbox.gateways.email.sender import EmailNotifier
from emsbox.gateways.errors import SetupError
from emsbox.gateways.modbus.image import Identity, LoadRating
from emsbox.gateways.modbus.remote_io import RemoteIO
from emsbox.gateways.modbus.server import RTU, TCP, ListenError, ModbusGateway
from emsbox.gateways.mqtt.discovery import DeviceInfo
from emsbox.gateways.mqtt.gateway import NAME as MQTT
from emsbox.gateways.mqtt.gateway import MqttGateway
from emsbox.loads import SourceKind
from emsbox.service.acquisition import Action, Command, CommandError
from emsbox.service.acquisition_process import (
    AcquisitionProcess,
    AcquisitionSpec,
    RemoteAcquisition,
)
from emsbox.service.polled import PolledMeterAcquisition, SerialLines
from emsbox.sources.base import SourceError
from emsbox.store.log import LogStore, StoreError
from emsbox.web.accounts import AccountStore

log = logging.getLogger(__name__)

LOG_FILE = "log.sqlite3"
COUNTERS_FILE = "counters.sqlite3"
ACCOUNTS_FILE = "users.sqlite3"


@dataclass(frozen=True)
class PartHealth:
    """Whether one running part of the service works, with a one-line detail."""

    name: str
    healthy: bool
    detail: str


@dataclass(frozen=True)
class LoadDescription:
    """A configured load as the API lists it."""

    name: str
    wiring: str
    source: str
    healthy: bool


Acquisition = RemoteAcquisition | PolledMeterAcquisition


@dataclass(frozen=True)
class _Measured:
    """A load being measured: the acquisition that owns it, with what the API lists of it."""

    acquisition: Acquisition
    description: LoadDescription  # its ``healthy`` is filled in when asked


def _measured(config: Config, acquisitions: list[Acquisition]) -> dict[str, _Measured]:
    meter = config.meter
    kinds = {meter.main.name: meter.main.source.kind.value}
    kinds |= {ext.name: ext.source.kind.value for ext in meter.loads}
    found = {}
    for acquisition in acquisitions:
        for load in acquisition.loads:
            # The single-phase parts of the main meter (main_l1, ...) share its source.
            kind = kinds.get(load.name, kinds[meter.main.name])
            description = LoadDescription(load.name, load.wiring.value, kind, healthy=False)
            found[load.name] = _Measured(acquisition, description)
    # In the configuration's order, whichever acquisition measures them.
    return {name: found[name] for name in meter.load_names() if name in found}


# The sections of the configuration that apply while running; the others at the next start.
LIVE_SECTIONS = ("site", "meter", "modbus", "mqtt", "bacnet", "io", "tariffs", "alarms", "email")
MODBUS_COMMAND_TIMEOUT_S = 3.0  # below the gateway's COMMAND_WAIT_S
MQTT_COMMAND_TIMEOUT_S = 10.0
# Built-in alarms: a source silent this long (a restart of the acquisition takes seconds);
# a store error this recent; less free space than this on the data directory's file system.
SOURCE_ALARM_DELAY_S = 30.0
STORE_ERROR_RECENT_S = 60.0
MIN_FREE_BYTES = 100_000_000
MIN_FREE_SHARE = 0.02


@dataclass(frozen=True)
class GatewayState:
    """A protocol server: whether it is enabled, works, and a one-line detail."""

    name: str
    enabled: bool
    healthy: bool
    detail: str


def _ratings(config: Config) -> list[LoadRating]:
    return [LoadRating(*rating) for rating in config.meter.ratings()]


def open_io(config: IoConfig) -> DigitalIO:
    """The digital I/O backend of ``config``: a remote I/O module over Modbus TCP (a gateway's,
    which the controller may not import), or one the controller opens itself."""
    if config.backend is IoBackend.MODBUS:
        return RemoteIO(
            config.modbus_host,
            config.modbus_port,
            config.modbus_unit_id,
            input_address=config.modbus_input_address,
            input_is_coil=config.modbus_input_table is ModbusInputTable.COIL,
            output_address=config.modbus_output_address,
            poll_interval_s=config.modbus_poll_interval_s,
        )
    return open_builtin(config)


def device_serial() -> str:
    """A short identifier of this device: from the machine id, else the host name."""
    try:
        machine = Path("/etc/machine-id").read_text(encoding="ascii").strip()
    except OSError:
        machine = ""
    return machine[:12] if machine else socket.gethostname()[:12]


class Service:
    """Every running part of emsbox, built from one configuration."""

    def __init__(
        self,
        config: Config,
        data_dir: Path,
        config_path: Path | None = None,
        saved: Config | None = None,
    ) -> None:
        self.config = config  # what runs now
        # What the file holds, without this run's --set overrides: runs from the next start.
        self.saved_config = saved or config
        # The file as it was at the start: a section that differs from it needs a restart.
        self._saved_at_start = self.saved_config
        self.data_dir = data_dir
        self.config_path = config_path or data_dir / CONFIG_FILE
        self.bus = Bus()
        self.started_at = time.time()
        self._lock = threading.Lock()
        self._process: AcquisitionProcess | None = None
        self._polled: list[PolledMeterAcquisition] = []
        self._serial_lines = SerialLines()
        self._acquisitions: list[Acquisition] = []
        self._by_load: dict[str, _Measured] = {}
        self._feed: threading.Thread | None = None
        self._stopping = threading.Event()
        self.store = LogStore(data_dir / LOG_FILE, config.store)
        self.accounts = AccountStore(data_dir / ACCOUNTS_FILE)
        self.restart_required = False
        self.controller = Controller(self.bus, self._commander(None), data_dir, open_io=open_io)
        self.controller.alarm_watch.on_alarm = self._alarm_notice
        self.controller.alarm_watch.system_checks = self._system_conditions
        # A Modbus write's command expires before the gateway stops waiting, so a write
        # answered with a failure was certainly not applied.
        self.modbus = ModbusGateway(
            self.bus, self._commander(MODBUS_COMMAND_TIMEOUT_S), output=self.controller
        )
        self._identity = Identity(__version__, device_serial())
        self._modbus_errors: dict[str, str] = {}  # by server, what keeps it from running
        self.mqtt = MqttGateway(
            self.bus,
            self.store,
            data_dir,
            self._commander(MQTT_COMMAND_TIMEOUT_S),
            switch_output=self._mqtt_output,
        )
        self._mqtt_error: str | None = None  # what keeps the MQTT gateway from running
        self.bacnet = BacnetGateway(
            self.bus,
            output=self.controller,
            load_health=self._load_healthy,
            io_state=self._io_contacts,
        )
        self._bacnet_error: str | None = None  # what keeps the BACnet device from running
        self.email = EmailNotifier(data_dir)
        self._email_error: str | None = None  # what keeps the e-mail notifier from running

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Open the sources and start acquisition, the store writer and the store feed."""
        self.store.start()
        self._start_acquisition(self.config)
        self._feed = threading.Thread(target=self._feed_store, name="store-feed", daemon=True)
        self._feed.start()
        self._serve_modbus_or_report()
        self._publish_mqtt_or_report()
        self._serve_bacnet_or_report()
        self._apply_email_or_report()
        self._apply_controller(self.config)

    def stop(self) -> None:
        """Stop acquisition (saving counters), then commit everything to the store."""
        self._stopping.set()
        self.controller.close()
        self.modbus.stop()
        self.mqtt.stop()
        self.bacnet.stop()
        self.email.stop()
        self._stop_polled()
        if self._process is not None:
            self._process.stop()
        if self._feed is not None:
            self._feed.join(5.0)
        try:
            self.store.close()
        except StoreError as exc:
            log.error("the log could not be flushed at stop: %s", exc)
        self.accounts.close()

    def _start_acquisition(self, config: Config) -> None:
        """Start the acquisition process with ``config``'s site and meter, then run on it."""
        spec = AcquisitionSpec(
            config.meter,
            self.data_dir,
            self.data_dir / COUNTERS_FILE,
            _utc_offset_h(config),
            logging.getLogger().getEffectiveLevel(),
        )
        self._process = AcquisitionProcess(spec, self.bus)
        acquisitions: list[Acquisition] = list(self._process.start())
        polled = [
            PolledMeterAcquisition(
                load.name,
                load.wiring,
                load.source.modbus,
                self._serial_lines,
                self.bus,
                interval_s=config.meter.publish_interval_s,
            )
            for load in config.meter.loads
            if load.source.kind is SourceKind.MODBUS
        ]
        for acquisition in polled:
            acquisition.start()
        self._polled = polled
        acquisitions += polled
        # Replaced whole, so that readers on other threads see the old set or the new one.
        self._acquisitions, self._by_load = acquisitions, _measured(config, acquisitions)
        self.config = config

    def _feed_store(self) -> None:
        sub = self.bus.subscribe(maxlen=3600)
        try:
            while not self._stopping.is_set():
                message = sub.get(0.5)
                if isinstance(message, Reading):
                    self.store.submit(message)
            for message in sub.drain():
                if isinstance(message, Reading):
                    self.store.submit(message)
        finally:
            self.bus.unsubscribe(sub)

    # -- what the web layer uses -----------------------------------------------------------

    def load_names(self) -> list[str]:
        """Every configured load, in configuration order."""
        return list(self._by_load)

    def describe_loads(self) -> list[LoadDescription]:
        """Name, wiring, source kind and health of every load."""
        return [
            replace(m.description, healthy=m.acquisition.healthy()) for m in self._by_load.values()
        ]

    def command(
        self,
        load: str,
        action: Action,
        requested_by: str,
        tariff: int | None = None,
        timeout_s: float | None = None,
    ) -> Future[dict[str, float | int | bool]]:
        """Send a command to the thread that owns ``load``'s counters.

        With ``timeout_s`` the command is refused (CommandExpiredError), never applied, once that
        long has passed without it reaching the acquisition.
        """
        measured = self._by_load.get(load)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        command = Command(load, action, requested_by, tariff, deadline)
        if measured is None:
            command.result.set_running_or_notify_cancel()
            command.result.set_exception(CommandError(f"no load named {load!r}"))
            return command.result
        return measured.acquisition.submit(command)

    def health(self) -> list[PartHealth]:
        """The health of every running part."""
        parts = []
        for acquisition in self._acquisitions:
            name = ", ".join(ml.name for ml in acquisition.loads)
            ok = acquisition.healthy()
            detail = acquisition.last_error or (
                f"{acquisition.readings} readings" if ok else "no recent reading"
            )
            parts.append(PartHealth(f"acquisition {name}", ok, detail))
        stats = self.store.stats()
        # An error the writer has since recovered from is reported for a while, not forever.
        recent = (
            stats.last_error_s is not None
            and time.time() - stats.last_error_s < STORE_ERROR_RECENT_S
        )
        detail = f"last error: {stats.last_error}" if stats.last_error else "logging"
        parts.append(PartHealth("store", not recent, detail))
        parts += [PartHealth(g.name, g.healthy, g.detail) for g in self.gateways() if g.enabled]
        io = self._io_health()
        if io is not None:
            parts.append(io)
        if self.config.email.enabled:
            parts.append(self._email_health())
        return parts

    def _io_health(self) -> PartHealth | None:
        """The digital I/O hardware's health; None for the simulated backend."""
        io = self.controller.state()
        if io.backend == IoBackend.SIMULATED:
            return None
        return PartHealth(
            "digital I/O", io.backend_ok, io.backend_error or f"{io.backend}: working"
        )

    def data_dir_usage(self) -> dict[str, int]:
        """Bytes used by the data directory and free on its file system."""
        used = sum(p.stat().st_size for p in self.data_dir.rglob("*") if p.is_file())
        return {"used_bytes": used, "free_bytes": shutil.disk_usage(self.data_dir).free}

    def replace_config(self, new: Config) -> bool:
        """Save a validated configuration and apply what can change while running.

        The site, the meter (loads, wiring, sources) and the gateways apply at once: the
        acquisition process restarts with them (a second or two without readings; the
        counters are saved and continue). The store and web sections apply at the next start;
        until then the service reports ``restart_required``. Returns ``restart_required``.
        Raises SourceError if the new sources cannot run, SetupError if a gateway cannot run
        as configured (the Modbus gateway or the BACnet device cannot listen, a certificate file
        of the MQTT gateway or the e-mail notifier is missing): then nothing is saved and what
        ran before runs on.
        """
        with self._lock:
            live = self.config.model_copy(update={s: getattr(new, s) for s in LIVE_SECTIONS})
            self.mqtt.check(live.mqtt)  # SetupError before anything changes
            self.email.check(live.email)
            self._apply_modbus(live)
            try:
                self._apply_bacnet(live)
            except SetupError:
                self._serve_modbus_or_report()  # as it was
                raise
            # The simulator follows the site's local time; the site's name needs no restart.
            if (live.meter, live.site.timezone) != (self.config.meter, self.config.site.timezone):
                try:
                    self._restart_acquisition(live)
                except SourceError:
                    self._serve_modbus_or_report()
                    self._serve_bacnet_or_report()
                    raise
            self.config = live
            self._publish_mqtt_or_report()
            self._apply_email_or_report()
            self._apply_controller(live)
            save_file(new, self.config_path)
            self.saved_config = new
            self.restart_required = any(
                getattr(new, section) != getattr(self._saved_at_start, section)
                for section in type(new).model_fields
                if section not in LIVE_SECTIONS
            )
            log.info("configuration saved to %s", self.config_path)
            return self.restart_required

    def _commander(
        self, timeout_s: float | None
    ) -> Callable[[str, str, int | None, str], Future[object]]:
        """The command queue as the gateways and the controller call it, (load, action,
        tariff, requested_by); with ``timeout_s`` a command not applied by then is refused."""

        def send(load: str, action: str, tariff: int | None, requested_by: str) -> Future[object]:
            future = self.command(load, cast(Action, action), requested_by, tariff, timeout_s)
            return cast("Future[object]", future)

        return send

    def _apply_modbus(self, config: Config) -> None:
        """Serve Modbus as ``config`` says; ListenError, keeping what ran, if it cannot."""
        self.modbus.apply(config.modbus, _ratings(config), self._identity)
        self._modbus_errors = {}

    def _serve_modbus_or_report(self) -> None:
        """Serve Modbus as the running configuration says; what cannot run is reported (in
        the health and diagnostics) and the rest runs: the TCP server without a serial line
        that cannot be opened, and the meter and the web app in any case."""
        config = self.config
        errors: dict[str, str] = {}
        for _ in range(2):
            try:
                self._apply_modbus(config)
                break
            except ListenError as exc:
                log.error("modbus: %s", exc)
                server = RTU if exc.key.startswith("modbus.rtu") else TCP
                errors[server] = str(exc)
                off = {"rtu_enabled": False} if server == RTU else {"tcp_enabled": False}
                modbus = config.modbus.model_copy(update=off)
                config = config.model_copy(update={"modbus": modbus})
        self._modbus_errors = errors

    def _mqtt_info(self) -> DeviceInfo:
        return DeviceInfo(f"emsbox-{device_serial()}", self.config.site.name, __version__)

    def _apply_controller(self, config: Config) -> None:
        """Run the digital I/O and the tariff calendar as ``config`` says."""
        tariffs = config.tariffs
        calendar = tariffs.calendar_in(config.site.zone()) if tariffs.calendar else None
        names = tuple(config.meter.load_names())
        self.controller.apply(
            config.io,
            names[0],
            loads=names,
            calendar=calendar,
            alarms=tuple(config.alarms.rules),
            system_alarms=config.alarms.system,
            system_output=config.alarms.system_output,
        )

    def _system_conditions(self) -> list[SystemCondition]:
        """The checks of the service's own parts, as built-in alarms."""
        conditions = []
        for load, measured in self._by_load.items():
            acquisition = measured.acquisition
            conditions.append(
                SystemCondition(
                    f"{SYSTEM_PREFIX}no readings from {load}",
                    not acquisition.healthy(),
                    acquisition.last_error or "no recent reading",
                    load=load,
                    on_delay_s=SOURCE_ALARM_DELAY_S,
                )
            )
        error, error_s = self.store.last_failure()
        failing = error_s is not None and time.time() - error_s < STORE_ERROR_RECENT_S
        conditions.append(SystemCondition(f"{SYSTEM_PREFIX}store failing", failing, error or ""))
        free = shutil.disk_usage(self.data_dir)
        low = free.free < max(MIN_FREE_BYTES, MIN_FREE_SHARE * free.total)
        detail = f"{free.free / 1e6:.0f} MB free in {self.data_dir}"
        conditions.append(SystemCondition(f"{SYSTEM_PREFIX}storage almost full", low, detail))
        io = self._io_health()
        if io is not None:
            name = f"{SYSTEM_PREFIX}digital I/O not working"
            conditions.append(SystemCondition(name, not io.healthy, io.detail))
        if self.config.email.enabled:
            email = self._email_health()
            name = f"{SYSTEM_PREFIX}e-mail not delivered"
            conditions.append(SystemCondition(name, not email.healthy, email.detail))
        mqtt = self.config.mqtt
        if mqtt.enabled and mqtt.publish_records:
            name = f"{SYSTEM_PREFIX}MQTT outbox full"
            try:
                waiting = self.store.outbox_stats().records
            except StoreError as exc:
                conditions.append(SystemCondition(name, True, f"outbox unreadable: {exc}"))
            else:
                detail = f"{waiting} records waiting for the broker; the oldest are dropped"
                full = waiting >= mqtt.outbox_max_records
                conditions.append(SystemCondition(name, full, detail))
        return conditions

    def _mqtt_output(self, on: bool, requested_by: str) -> dict[str, object]:
        """Switch the digital output for an MQTT command; ControlError if not remote."""
        self.controller.set_output(on, requested_by)
        return {"output_on": on}

    def _alarm_notice(self, notice: AlarmNotice) -> None:
        """An alarm event: published over MQTT when the gateway runs, and sent by e-mail
        when that is on for this kind of event."""
        event = asdict(notice)
        self.mqtt.notify_alarm(event)
        email = self.config.email
        if email.enabled and notice.event in email.events:
            self.email.notify(event)

    def alarms(self) -> list[AlarmStatus]:
        """Every configured alarm now."""
        return self.controller.alarms()

    def alarm_history(self, limit: int, alarm: str | None) -> list[AlarmEvent]:
        """The newest alarm events first."""
        return self.controller.alarm_history(limit, alarm)

    def acknowledge_alarm(self, name: str, by: str) -> bool:
        """``by`` acknowledges an alarm; ControlError if there is none of that name."""
        return self.controller.acknowledge(name, by)

    def io_state(self) -> IoState:
        """The digital input and output now."""
        return self.controller.state()

    def set_output(self, on: bool, requested_by: str) -> None:
        """Switch the digital output (remote function only); ControlError otherwise."""
        self.controller.set_output(on, requested_by)

    def set_simulated_input(self, closed: bool, requested_by: str) -> None:
        """Close or open the simulated digital input; ControlError with real hardware."""
        self.controller.set_input(closed, requested_by)

    def mqtt_file_replaced(self, path: str) -> bool:
        """A certificate file (``path`` as the settings name it) was replaced: when the
        running MQTT settings use it, reconnect with it at once. Returns whether they do."""
        mqtt = self.config.mqtt
        if not mqtt.enabled or path not in (
            mqtt.ca_file,
            mqtt.client_cert_file,
            mqtt.client_key_file,
        ):
            return False
        with self._lock:
            self.mqtt.restart()
            self._mqtt_error = None
        return True

    def _apply_email_or_report(self) -> None:
        """Send e-mail as the running configuration says; a setting that keeps it from
        running is reported in the health, the rest runs on."""
        site = self.config.site
        try:
            self.email.apply(self.config.email, site.name, site.zone())
            self._email_error = None
        except SetupError as exc:
            log.error("email: %s: %s", exc.key, exc)
            self._email_error = f"{exc.key}: {exc}"
            self.email.stop()

    def _email_health(self) -> PartHealth:
        """The e-mail notifier: healthy unless its last attempt failed or a message has
        been waiting long."""
        if self._email_error is not None:
            return PartHealth("email", False, self._email_error)
        status = self.email.status()
        return PartHealth("email", status.healthy, status.detail)

    def _publish_mqtt_or_report(self) -> None:
        """Run the MQTT gateway as the running configuration says; a setting that keeps it
        from running is reported (health and diagnostics), the rest runs on."""
        try:
            self.mqtt.apply(self.config.mqtt, self.load_names(), self._mqtt_info())
            self._mqtt_error = None
        except SetupError as exc:
            log.error("mqtt: %s: %s", exc.key, exc)
            self._mqtt_error = f"{exc.key}: {exc}"
            self.mqtt.stop()

    def gateways(self) -> list[GatewayState]:
        """Every protocol server, enabled or not."""
        modbus = self.config.modbus
        running = {h.name: h for h in self.modbus.health()}
        states = []
        for name, enabled in ((TCP, modbus.tcp_enabled), (RTU, modbus.rtu_enabled)):
            error = self._modbus_errors.get(name)
            health = running.get(name)
            if error is not None:
                states.append(GatewayState(name, enabled, False, error))
            elif health is not None:
                states.append(GatewayState(name, enabled, health.healthy, health.detail))
            else:
                states.append(GatewayState(name, enabled, not enabled, "off"))
        states.append(self._mqtt_state())
        states.append(self._bacnet_state())
        return states

    def _bacnet_state(self) -> GatewayState:
        enabled = self.config.bacnet.enabled
        if self._bacnet_error is not None:
            return GatewayState(BACNET, enabled, False, self._bacnet_error)
        parts = self.bacnet.health()
        if not enabled or not parts:
            return GatewayState(BACNET, enabled, not enabled, "off")
        detail = "; ".join(p.detail for p in parts)
        return GatewayState(BACNET, True, all(p.healthy for p in parts), detail)

    def _apply_bacnet(self, config: Config) -> None:
        """Serve BACnet as ``config`` says; BacnetSetupError, keeping what ran, if it cannot."""
        identity = BacnetIdentity(__version__, device_serial())
        self.bacnet.apply(config.bacnet, list(config.meter.load_names()), identity)
        self._bacnet_error = None

    def _serve_bacnet_or_report(self) -> None:
        """Serve BACnet as the running configuration says; a setting that keeps it from
        running is reported (health and diagnostics), the rest runs on."""
        try:
            self._apply_bacnet(self.config)
        except SetupError as exc:
            log.error("bacnet: %s: %s", exc.key, exc)
            self._bacnet_error = f"{exc.key}: {exc}"

    def _load_healthy(self, load: str) -> bool:
        """Whether ``load``'s source delivers readings (for the BACnet reliability)."""
        measured = self._by_load.get(load)
        return measured is not None and measured.acquisition.healthy()

    def _io_contacts(self) -> tuple[bool, bool]:
        """The digital input's contact and whether the output is on (for BACnet)."""
        # output_on() is the switched state at once, before the next tick sets the contact.
        return self.controller.state().input_closed, self.controller.output_on()

    def _mqtt_state(self) -> GatewayState:
        enabled = self.config.mqtt.enabled
        if self._mqtt_error is not None:
            return GatewayState(MQTT, enabled, False, self._mqtt_error)
        if not enabled:
            return GatewayState(MQTT, False, True, "off")
        try:
            status = self.mqtt.status()
        except StoreError as exc:
            return GatewayState(MQTT, True, False, f"outbox unreadable: {exc}")
        detail = status.detail
        full = status.records_waiting >= self.config.mqtt.outbox_max_records
        if self.config.mqtt.publish_records:
            detail += f"; {status.records_waiting} records waiting"
            if status.records_dropped:
                detail += f", {status.records_dropped} dropped when the outbox was full"
        return GatewayState(MQTT, True, status.connected and not full, detail)

    def _stop_polled(self) -> None:
        for acquisition in self._polled:
            acquisition.stop()
        self._polled = []
        self._serial_lines.close()

    def _restart_acquisition(self, live: Config) -> None:
        """Run the acquisition with ``live``'s site and meter; on failure, as it was."""
        self._stop_polled()
        if self._process is not None:
            self._process.stop()
        try:
            self._start_acquisition(live)
        except SourceError:
            self._start_acquisition(self.config)
            raise
        log.info("meter restarted with loads %s", ", ".join(self._by_load))

    @property
    def version(self) -> str:
        """The running version."""
        return __version__


def _utc_offset_h(config: Config) -> float:
    offset = datetime.now(config.site.zone()).utcoffset()
    return offset.total_seconds() / 3600.0 if offset is not None else 0.0
