"""The BACnet/IP gateway: the meter as a BACnet device, in its own thread and event loop.

The gateway binds the device's socket (device.py), rebinds it or changes its objects as the
settings change, feeds it the readings of the bus and, once a second, the loads' health and
the digital I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from emsbox.bus import Bus, Reading
from emsbox.gateways.bacnet.config import BacnetConfig
from emsbox.gateways.bacnet.database import Database, DeviceIdentity, LiveState
from emsbox.gateways.bacnet.device import BroadcastReceiver, Device
from emsbox.gateways.bacnet.identifiers import MAX_INSTANCE
from emsbox.gateways.bacnet.objects import object_table
from emsbox.gateways.bacnet.registration import registration_for
from emsbox.gateways.errors import SetupError
from emsbox.gateways.loop_thread import LoopThreads

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
RECEIVE_BUFFER = 4 * 1024 * 1024  # bursts of requests (a BMS polling hundreds of points)
TICK_S = 1.0  # health, digital I/O and subscription lifetimes are looked at this often
STALE_AFTER_S = 15.0  # a load with no reading for this long is served as communication-failure

BACNET = "BACnet/IP"
BBMD = "BACnet BBMD"


class BacnetSetupError(SetupError):
    """The device cannot run as configured; ``key`` is the setting at fault."""


@dataclass(frozen=True)
class GatewayHealth:
    """Whether a part of the gateway serves, with a one-line detail."""

    name: str
    healthy: bool
    detail: str


@dataclass(frozen=True)
class Identity:
    """What the device says of itself: the emsbox version and the device's serial number."""

    version: str
    serial: str


class OutputSwitch(Protocol):
    """The device's digital output, as a commandable binary output switches it."""

    def set_output(self, on: bool, requested_by: str) -> None:
        """Switch it; an exception says why not (its function is not remote)."""


LoadHealth = Callable[[str], bool]  # whether a load's source delivers
IoState = Callable[[], tuple[bool, bool]]  # (input closed, output on)


def derive_instance(serial: str) -> int:
    """A device instance from the serial number: stable, within 0…4194302."""
    return zlib.crc32(serial.encode()) % (MAX_INSTANCE + 1)


def device_identity(config: BacnetConfig, identity: Identity) -> DeviceIdentity:
    """The device object's identity from the settings and the device's serial number."""
    instance = config.device_instance
    return DeviceIdentity(
        instance=derive_instance(identity.serial) if instance is None else instance,
        name=config.device_name or f"emsbox-{identity.serial}",
        location=config.location,
        description=config.description,
        version=identity.version,
    )


def _open_socket(host: str, port: int) -> socket.socket:
    """A plain bind (no SO_REUSEPORT: two devices must never share a port unknowingly)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


ANY_ADDRESS = "0.0.0.0"


def _broadcast_listen(config: BacnetConfig) -> str:
    """The broadcast address a second, receive-only socket listens on: needed when the
    device's socket is bound to one unicast address (Linux gives such a socket no
    datagrams sent to the broadcast address); none when it is bound to 0.0.0.0."""
    if config.bind_address == ANY_ADDRESS:
        return ""
    return config.broadcast_address


def _address_settings(config: BacnetConfig) -> tuple[object, ...]:
    return (config.enabled, config.bind_address, config.port, _broadcast_listen(config))


@dataclass
class _Setup:
    config: BacnetConfig = field(default_factory=BacnetConfig)
    loads: list[str] = field(default_factory=list)
    identity: Identity = field(default_factory=lambda: Identity("", ""))


class BacnetGateway:
    """The BACnet/IP gateway of the service: serves the readings of the bus as a BACnet
    device, as the configuration says.

    ``apply`` starts, rebinds or stops the device while the service runs; the values follow
    every reading the bus publishes; ``load_health`` says whether a load's source delivers,
    ``io_state`` what the digital input and output are, ``output`` switches the output.
    """

    def __init__(
        self,
        bus: Bus,
        output: OutputSwitch | None = None,
        load_health: LoadHealth | None = None,
        io_state: IoState | None = None,
    ) -> None:
        self._output = output
        self._load_health = load_health
        self._io_state = io_state
        self._state = LiveState()
        self._setup = _Setup()
        self._device: Device | None = None
        self._received_at: dict[str, float] = {}
        self._tick_failed = False
        self.address: tuple[str, int] | None = None
        self._lock = threading.Lock()
        self._threads = LoopThreads("bacnet", bus, self._deliver, latest_first=True)
        self._loop = self._threads.loop
        self._threads.start()

    @property
    def device_instance(self) -> int | None:
        """The device object's instance while the device runs."""
        device = self._device
        return None if device is None else device.db.identity.instance

    def apply(self, config: BacnetConfig, loads: Sequence[str], identity: Identity) -> None:
        """Serve with ``config`` and these loads from now on. Raises BacnetSetupError,
        keeping what ran before, when the device cannot listen as configured. Nothing
        happens once the gateway is stopped."""
        with self._lock:
            if self._threads.stopping.is_set():
                return
            work = self._apply(config, list(loads), identity)
            self.address = self._threads.run(work, START_TIMEOUT_S)
            self._setup = _Setup(config, list(loads), identity)

    async def _apply(
        self, config: BacnetConfig, loads: list[str], identity: Identity
    ) -> tuple[str, int] | None:
        old = self._device
        if not config.enabled:
            if old is not None:
                old.close()
                log.info("bacnet: device stopped")
            self._device = None
            return None
        db = Database(
            device_identity(config, identity),
            object_table(loads, config.cov_increment_map(), digital_io=self._io_state is not None),
            commandable=config.output_commandable and self._output is not None,
            state=self._state,
        )
        if old is not None and _address_settings(old.config) == _address_settings(config):
            before = old.db.identity
            old.reconfigure(config, db)  # the socket stays; the objects change
            await self._setup_registration(old, config)
            self._refresh_health()
            old.notifications.check_all()
            if (before.instance, before.name) != (db.identity.instance, db.identity.name):
                old.announce()  # clients learn the new identity (16.10)
            return self.address
        try:
            sock = await self._bind(config, old)
        except BacnetSetupError:
            if old is not None and self._device is None and self.address is not None:
                # The old socket was closed to free its port: serve on it again.
                back = _open_socket(old.config.bind_address, self.address[1])
                await self._start(old.config, old.db, back)
            raise
        if old is not None:
            old.close()
            await old.wait_closed()  # its broadcast socket's address is free again
        return await self._start(config, db, sock)

    async def _start(
        self, config: BacnetConfig, db: Database, sock: socket.socket
    ) -> tuple[str, int]:
        device = Device(config, db, None if self._output is None else self._switch)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: device, sock=sock)
        host, port = sock.getsockname()[:2]
        self._device = device
        await self._listen_broadcasts(device, config, int(port))
        await self._setup_registration(device, config)
        self._refresh_health()
        self._tick()
        log.info("bacnet: device %d on UDP %s:%d", db.identity.instance, host, port)
        device.announce()
        return str(host), int(port)

    async def _listen_broadcasts(self, device: Device, config: BacnetConfig, port: int) -> None:
        """The receive-only socket on the broadcast address, when the device's socket is
        bound to a unicast address; a failure is logged and reported in the health."""
        address = _broadcast_listen(config)
        if not address:
            return
        try:
            sock = _open_socket(address, port)
        except OSError as exc:
            device.broadcast_problem = (
                f"broadcasts to {address}:{port} are not received ({exc.strerror or exc})"
            )
            log.warning("bacnet: %s", device.broadcast_problem)
            return
        receiver = BroadcastReceiver(device)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: receiver, sock=sock)
        device.broadcast_receiver = receiver

    async def _bind(self, config: BacnetConfig, old: Device | None) -> socket.socket:
        try:
            return _open_socket(config.bind_address, config.port)
        except OSError as exc:
            if old is not None and self.address is not None and config.port == self.address[1]:
                # The same port on another address: the old socket must go first.
                old.close()
                await old.wait_closed()
                self._device = None
                try:
                    return _open_socket(config.bind_address, config.port)
                except OSError:
                    pass
            where = f"{config.bind_address}:{config.port}"
            hint = ""
            if config.port < 1024 and isinstance(exc, PermissionError):
                hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            message = f"cannot listen on UDP {where}: {exc.strerror or exc}{hint}"
            key = "bacnet.bind_address" if exc.errno == 99 else "bacnet.port"
            raise BacnetSetupError(key, message) from None

    async def _setup_registration(self, device: Device, config: BacnetConfig) -> None:
        device.registration = await registration_for(config, device.registration, device.sendto)

    def _tick(self) -> None:
        """Once a second: loads' health, digital I/O, lifetimes, registration renewal. A
        failure is logged (once) and the next tick comes all the same."""
        device = self._device
        if device is None:
            return
        try:
            self._refresh_health()
            self._poll_io()
            if device.registration is not None:
                device.registration.register()
            device.notifications.check_all()
        except Exception:
            if not self._tick_failed:
                log.exception("bacnet: the periodic work failed (logged once)")
            self._tick_failed = True
        finally:
            if self._device is device:
                device.tick_handle = self._loop.call_later(TICK_S, self._tick)

    def _refresh_health(self, only: str | None = None) -> None:
        """Whether each load (or ``only`` that one) is served as healthy: a fresh reading
        and, when the service says, a healthy source."""
        now = time.monotonic()
        state = self._state
        for load in self._setup_loads() if only is None else [only]:
            fresh = now - self._received_at.get(load, -1e9) < STALE_AFTER_S
            healthy = fresh and load in state.readings
            if healthy and self._load_health is not None:
                try:
                    healthy = bool(self._load_health(load))
                except Exception:  # a failing probe is an unhealthy load, not a dead device
                    healthy = False
            state.healthy[load] = healthy

    def _setup_loads(self) -> list[str]:
        device = self._device
        if device is None:
            return []
        return sorted({o.load for o in device.db.objects if o.load is not None})

    def _switch(self, on: bool, requested_by: str) -> None:
        """Switch the digital output for a client, and serve its new state at once."""
        assert self._output is not None  # the device is given this only with an output
        self._output.set_output(on, requested_by)
        self._poll_io()

    def _poll_io(self) -> None:
        if self._io_state is None:
            return
        try:
            input_closed, output_on = self._io_state()
        except Exception:
            self._state.io_known = False
            return
        state = self._state
        state.input_active, state.output_on, state.io_known = input_closed, output_on, True

    def health(self) -> list[GatewayHealth]:
        """The state of the device and of its BBMD registration, when they run."""
        device = self._device
        if device is None or self.address is None:
            return []
        c = device.counters
        host, port = self.address
        detail = (
            f"UDP {host}:{port}, device {device.db.identity.instance}, "
            f"{len(device.db.objects) + 1} objects, {c.requests} requests, "
            f"{len(device.notifications.cov)} COV subscriptions, "
            f"{c.malformed} malformed or unexpected datagrams"
        )
        if c.unconfirmed_dropped:
            detail += f", {c.unconfirmed_dropped} Who-Is/Who-Has over the rate limit"
        if device.broadcast_problem:
            detail += f", {device.broadcast_problem}"
        out = [GatewayHealth(BACNET, True, detail)]
        reg = device.registration
        if reg is not None:
            out.append(GatewayHealth(BBMD, reg.registered, reg.detail))
        return out

    def stop(self) -> None:
        """Close the device and end the threads (once); waits for an ``apply`` under way."""
        with self._lock:
            if self._threads.stopping.is_set():
                return
            self._threads.stopping.set()

            async def close() -> None:
                if self._device is not None:
                    self._device.close()
                    self._device = None

            try:
                if self._loop.is_running():
                    self._threads.run(close(), 5.0)
            finally:  # the threads end even if the device did not close cleanly
                self._threads.close()

    # -- readings -------------------------------------------------------------------------

    def _deliver(self, reading: Reading) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the gateway stops
            self._loop.call_soon_threadsafe(self._update, reading)

    def _update(self, reading: Reading) -> None:
        self._state.readings[reading.load] = reading
        self._received_at[reading.load] = time.monotonic()
        device = self._device
        if device is None:
            return
        self._refresh_health(reading.load)
        device.notifications.check_load(reading.load)
