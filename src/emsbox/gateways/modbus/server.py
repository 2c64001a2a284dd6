"""The Modbus gateway: the TCP server in its own thread and event loop, and the RTU slave
(rtu_server.py), both answering from the units' images.

The TCP server is written on asyncio rather than on a Modbus library's server so that every
stream is handled as the gateway must (see docs/modbus.md): pipelined requests are all
answered in order; a header no Modbus client sends (protocol id not 0, length out of range)
closes the connection at once; a frame left incomplete for ``FRAME_TIMEOUT_S``, or a
connection silent for the idle timeout, is closed; a client that does not read its answers
stops being read, and the connections are limited in number. Nothing a client sends can stop
the server or slow the other clients.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

from emsbox.bus import Bus, Reading
from emsbox.gateways.errors import SetupError
from emsbox.gateways.loop_thread import LoopThreads
from emsbox.gateways.modbus.config import ModbusConfig
from emsbox.gateways.modbus.image import Identity, LoadRating, unit_image
from emsbox.gateways.modbus.protocol import (
    Frame,
    FramingError,
    ModbusError,
    answer,
    exception_pdu,
    split_frames,
    tcp_response,
)
from emsbox.gateways.modbus.rtu_server import RtuServer, SerialLineError, line_settings
from emsbox.gateways.modbus.sunspec_models import SunSpecModels
from emsbox.gateways.modbus.units import COMMAND_WAIT_S, DEVICE_UNITS, Commander, Output, Units

log = logging.getLogger(__name__)

FRAME_TIMEOUT_S = 5.0  # a request's bytes arrive within this, or the connection goes
START_TIMEOUT_S = 10.0
MAX_QUEUED = 64  # requests a connection may have waiting behind its writes


class ListenError(SetupError):
    """A server cannot listen as configured; ``key`` is the setting at fault."""


@dataclass(frozen=True)
class GatewayHealth:
    """Whether one of the gateway's servers serves, with a one-line detail."""

    name: str
    healthy: bool
    detail: str


TCP = "Modbus TCP"
RTU = "Modbus RTU"


class _Connection(asyncio.Protocol):
    """One client: frames in, answers out, closed on a framing error or a timeout."""

    def __init__(self, server: _TcpServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.pending: asyncio.Task[None] | None = None
        self.queued = 0  # requests waiting behind a write
        self.peer = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        if len(self.server.connections) >= self.server.config.max_connections:
            self.server.refused += 1
            transport.abort()
            return
        self.server.connections.add(self)
        self._arm()

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        try:
            frames = split_frames(self.buffer)
        except FramingError as exc:
            self.server.framing_errors += 1
            log.debug("modbus: closing a connection: %s", exc)
            self.transport.abort()
            return
        units = self.server.units
        for frame in frames:
            if self.pending is None and not units.takes_write(frame.pdu):
                pdu = answer(frame.pdu, units.reader(frame.unit_id))
                self.transport.write(tcp_response(frame, pdu))
            else:
                # A write waits for its commands; what follows it waits for its answer.
                if self.queued >= MAX_QUEUED:
                    log.warning("modbus: %s sends more than it waits for; closing", self.peer)
                    self.transport.abort()
                    return
                self.queued += 1
                task = asyncio.get_running_loop().create_task(self._later(self.pending, frame))
                self.pending = task
                task.add_done_callback(self._settled)
        self.server.requests += len(frames)
        self._arm()

    async def _later(self, before: asyncio.Task[None] | None, frame: Frame) -> None:
        if before is not None:
            await asyncio.shield(before)
        units = self.server.units
        if units.takes_write(frame.pdu) and units.reader(frame.unit_id) is not None:
            pdu = await self._write(frame)
        else:
            pdu = answer(frame.pdu, units.reader(frame.unit_id))
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(tcp_response(frame, pdu))

    async def _write(self, frame: Frame) -> bytes:
        units = self.server.units
        unit = 1 if frame.unit_id in DEVICE_UNITS else frame.unit_id
        try:
            request, futures = units.submit(unit, frame.pdu, self.peer)
        except ModbusError as error:
            return exception_pdu(frame.pdu[0], error.code)
        errors: list[BaseException | None] = []
        for future in futures:
            try:
                await asyncio.wait_for(asyncio.wrap_future(future), COMMAND_WAIT_S)
                errors.append(None)
            except Exception as exc:  # any failure is the client's exception 04
                errors.append(exc)
        return units.outcome(request, errors)

    def _settled(self, task: asyncio.Task[None]) -> None:
        self.queued -= 1
        if self.pending is task:
            self.pending = None

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        # Half a frame must be completed soon; a quiet client may wait the idle timeout.
        timeout = FRAME_TIMEOUT_S if self.buffer else self.server.config.idle_timeout_s
        self.timer = asyncio.get_running_loop().call_later(timeout, self._expire)

    def _expire(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def pause_writing(self) -> None:
        # The client does not read its answers: stop reading its requests meanwhile.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.server.connections.discard(self)


class _TcpServer:
    """The listening socket and its connections, inside the gateway's event loop."""

    def __init__(self, config: ModbusConfig, units: Units) -> None:
        self.config = config
        self.units = units
        self.connections: set[_Connection] = set()
        self.server: asyncio.Server | None = None
        self.requests = 0
        self.framing_errors = 0
        self.refused = 0

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        try:
            self.server = await loop.create_server(
                lambda: _Connection(self),
                self.config.bind_address,
                self.config.tcp_port,
                reuse_address=True,
            )
        except OSError as exc:
            hint = ""
            if self.config.tcp_port < 1024 and isinstance(exc, PermissionError):
                hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            where = f"{self.config.bind_address}:{self.config.tcp_port}"
            message = f"cannot listen on {where}: {exc.strerror or exc}{hint}"
            raise ListenError("modbus.tcp_port", message) from None
        host, port = self.server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        if self.server is not None:
            await self.server.wait_closed()


def _tcp_settings(config: ModbusConfig) -> tuple[object, ...]:
    return (
        config.tcp_enabled,
        config.bind_address,
        config.tcp_port,
        config.max_connections,
        config.idle_timeout_s,
    )


class ModbusGateway:
    """The Modbus gateway of the service: serves the readings of the bus as the config says.

    ``apply`` starts, restarts or stops the TCP server to match a configuration, while the
    service runs; the images follow every reading the bus publishes.
    """

    def __init__(
        self, bus: Bus, commander: Commander | None = None, output: Output | None = None
    ) -> None:
        self._bus = bus
        self._output = output
        self._units = Units(commander, output)
        self._units.output_switched = self._refresh
        self._config = ModbusConfig()
        self._ratings: list[LoadRating] = []
        self._identity = Identity("", "")
        self._tcp: _TcpServer | None = None
        self._rtu: RtuServer | None = None
        self.address: tuple[str, int] | None = None
        self._lock = threading.Lock()
        # The images' own lock: never held while waiting for the event loop, so that a write
        # of the output register (answered on the loop) can rebuild them during an apply().
        self._images_lock = threading.Lock()
        self._models = SunSpecModels.FLOAT
        self._threads = LoopThreads("modbus", bus, self._update)
        self._threads.start()

    def apply(self, config: ModbusConfig, ratings: list[LoadRating], identity: Identity) -> None:
        """Serve with ``config`` and these loads from now on. Raises ListenError, keeping
        what ran before, when a server cannot listen as configured."""
        with self._lock:
            old = self._config
            tcp_changed = (
                _tcp_settings(config) != _tcp_settings(old)
                or (self._tcp is not None) != config.tcp_enabled
            )
            if tcp_changed:
                self.address = self._threads.run(self._switch(config), START_TIMEOUT_S)
            try:
                self._switch_rtu(config)
            except SerialLineError as exc:
                if tcp_changed:
                    self.address = self._threads.run(self._switch(old), START_TIMEOUT_S)
                raise ListenError("modbus.rtu_serial_port", str(exc)) from None
            self._config = config
            with self._images_lock:
                self._ratings, self._identity = list(ratings), identity
                self._models = config.sunspec_models
            self._units.writes = config.writes_enabled
            self._units.names = {unit: r.name for unit, r in enumerate(self._ratings, start=1)}
        self._refresh()

    def _refresh(self) -> None:
        """Rebuild every unit's image from the latest readings (and the output's state)."""
        latest = self._bus.latest_all()
        on = self._output_on()
        with self._images_lock:
            self._units.images = {
                unit: unit_image(
                    r, unit, latest.get(r.name), self._identity, self._models, output_on=on
                )
                for unit, r in enumerate(self._ratings, start=1)
            }

    def _output_on(self) -> bool:
        return self._output is not None and self._output.output_on()

    def _switch_rtu(self, config: ModbusConfig) -> None:
        old = self._rtu
        if not config.rtu_enabled:
            if old is not None:
                old.stop()
                log.info("modbus: RTU slave stopped")
            self._rtu = None
            return
        if old is not None and line_settings(old.config) == line_settings(config):
            old.config = config  # the port stays open; the unit ids change
            return
        if old is not None:
            old.stop()  # the same port may be opened anew with other settings
        new = RtuServer(config, self._units)
        try:
            new.start()
        except SerialLineError:
            if old is not None:
                try:
                    old.start()
                except SerialLineError as again:
                    log.error("modbus: RTU slave cannot be started again: %s", again)
                    self._rtu = None
            raise
        self._rtu = new

    async def _switch(self, config: ModbusConfig) -> tuple[str, int] | None:
        old = self._tcp
        if not config.tcp_enabled:
            if old is not None:
                await old.stop()
                log.info("modbus: TCP server stopped")
            self._tcp = None
            return None
        if old is not None and (config.bind_address, config.tcp_port) == (
            old.config.bind_address,
            old.config.tcp_port,
        ):
            old.config = config  # the socket stays; the limits change
            return self.address
        new = _TcpServer(config, self._units)
        try:
            address = await new.start()
        except ListenError:
            if old is None or self.address is None or config.tcp_port != self.address[1]:
                raise
            # The same port on another address: the old socket must go first.
            await old.stop()
            try:
                address = await new.start()
            except ListenError:
                self.address = await old.start()
                raise
        if old is not None:
            await old.stop()
        self._tcp = new
        log.info("modbus: TCP server on %s:%d", *address)
        return address

    def health(self) -> list[GatewayHealth]:
        """The state of each server that runs."""
        out = []
        tcp, rtu = self._tcp, self._rtu
        if tcp is not None and self.address is not None:
            host, port = self.address
            detail = f"TCP {host}:{port}, {len(tcp.connections)} clients, {tcp.requests} requests"
            out.append(GatewayHealth(TCP, True, detail))
        if rtu is not None:
            line = rtu.config.rtu_serial_port
            detail = rtu.error or f"{line}, {rtu.requests} requests, {rtu.dropped} bad frames"
            out.append(GatewayHealth(RTU, rtu.error is None, detail))
        return out

    def stop(self) -> None:
        """Close the server and its connections, and end the threads (once)."""
        if self._threads.stopping.is_set():
            return
        self._threads.stopping.set()
        try:
            if self._tcp is not None:
                self._threads.run(self._tcp.stop(), 5.0)
                self._tcp = None
            if self._rtu is not None:
                self._rtu.stop()
                self._rtu = None
        finally:  # the threads end even if a server did not close cleanly
            self._threads.close()

    # -- images ----------------------------------------------------------------------------

    def _update(self, reading: Reading) -> None:
        if self._tcp is None and self._rtu is None:
            return  # nobody to serve: no need to encode
        on = self._output_on()
        with self._images_lock:
            for unit, rating in enumerate(self._ratings, start=1):
                if rating.name == reading.load:
                    image = unit_image(
                        rating, unit, reading, self._identity, self._models, output_on=on
                    )
                    self._units.images = {**self._units.images, unit: image}
