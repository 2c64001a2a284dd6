"""The Modbus TCP server: its own thread and event loop, answering from the units' images.

Written on asyncio rather than on a Modbus library's server so that every stream is handled
as the gateway must (see PITFALLS.md): pipelined requests are all answered in order; a header
no Modbus client sends (protocol id not 0, length out of range) closes the connection at once;
a frame left incomplete for ``FRAME_TIMEOUT_S``, or a connection silent for the idle timeout,
is closed; a client that does not read its answers stops being read, and the connections are
limited in number. Nothing a client sends can stop the server or slow the other clients.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from emsbox.bus import Bus, Reading
from emsbox.gateways.modbus.config import ModbusConfig
from emsbox.gateways.modbus.image import Identity, LoadRating, UnitImage, unit_image
from emsbox.gateways.modbus.protocol import (
    FramingError,
    ReadRegisters,
    answer,
    split_frames,
    tcp_response,
)

log = logging.getLogger(__name__)

FRAME_TIMEOUT_S = 5.0  # a request's bytes arrive within this, or the connection goes
START_TIMEOUT_S = 10.0
# TCP clients address "the device itself" as unit 0 or 255: the first load answers.
DEVICE_UNITS = (0, 255)


class ListenError(Exception):
    """The server cannot listen on the configured address and port."""


@dataclass(frozen=True)
class GatewayHealth:
    """Whether the gateway serves, with a one-line detail."""

    healthy: bool
    detail: str


class _Units:
    """The units' images, replaced whole (so a reader sees the old set or the new one)."""

    def __init__(self) -> None:
        self.images: Mapping[int, UnitImage] = {}

    def reader(self, unit_id: int) -> ReadRegisters | None:
        image = self.images.get(1 if unit_id in DEVICE_UNITS else unit_id)
        return None if image is None else image.read


class _Connection(asyncio.Protocol):
    """One client: frames in, answers out, closed on a framing error or a timeout."""

    def __init__(self, server: _TcpServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
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
            self.transport.write(
                tcp_response(frame, answer(frame.pdu, units.reader(frame.unit_id)))
            )
        self.server.requests += len(frames)
        self._arm()

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

    def __init__(self, config: ModbusConfig, units: _Units) -> None:
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
            raise ListenError(f"cannot listen on {where}: {exc.strerror or exc}{hint}") from None
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


class ModbusGateway:
    """The Modbus gateway of the service: serves the readings of the bus as the config says.

    ``apply`` starts, restarts or stops the TCP server to match a configuration, while the
    service runs; the images follow every reading the bus publishes.
    """

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._units = _Units()
        self._config = ModbusConfig()
        self._ratings: list[LoadRating] = []
        self._identity = Identity("", "")
        self._tcp: _TcpServer | None = None
        self.address: tuple[str, int] | None = None
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="modbus", daemon=True
        )
        self._feed_thread = threading.Thread(target=self._feed, name="modbus-feed", daemon=True)
        self._loop_thread.start()
        self._feed_thread.start()

    def apply(self, config: ModbusConfig, ratings: list[LoadRating], identity: Identity) -> None:
        """Serve with ``config`` and these loads from now on. Raises ListenError, keeping
        what ran before, when the new address cannot be listened on."""
        with self._lock:
            if config != self._config or (self._tcp is not None) != config.tcp_enabled:
                future = asyncio.run_coroutine_threadsafe(self._switch(config), self._loop)
                self.address = future.result(START_TIMEOUT_S)
            self._config = config
            self._ratings, self._identity = list(ratings), identity
            latest = self._bus.latest_all()
            self._units.images = {
                unit: unit_image(r, unit, latest.get(r.name), identity, config.sunspec_models)
                for unit, r in enumerate(self._ratings, start=1)
            }

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

    def health(self) -> GatewayHealth | None:
        """The TCP server's state; None when it is off."""
        tcp = self._tcp
        if tcp is None or self.address is None:
            return None
        host, port = self.address
        return GatewayHealth(
            True,
            f"TCP {host}:{port}, {len(tcp.connections)} clients, {tcp.requests} requests",
        )

    def stop(self) -> None:
        """Close the server and its connections, and end the threads (once)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._tcp is not None:
            asyncio.run_coroutine_threadsafe(self._tcp.stop(), self._loop).result(5.0)
            self._tcp = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(5.0)
        self._feed_thread.join(5.0)
        self._loop.close()

    # -- images ----------------------------------------------------------------------------

    def _feed(self) -> None:
        sub = self._bus.subscribe(maxlen=64)
        try:
            while not self._stopping.is_set():
                message = sub.get(0.5)
                if isinstance(message, Reading):
                    self._update(message)
        finally:
            self._bus.unsubscribe(sub)

    def _update(self, reading: Reading) -> None:
        with self._lock:
            if self._tcp is None:
                return  # nobody to serve: no need to encode
            for unit, rating in enumerate(self._ratings, start=1):
                if rating.name == reading.load:
                    image = unit_image(
                        rating, unit, reading, self._identity, self._config.sunspec_models
                    )
                    self._units.images = {**self._units.images, unit: image}
