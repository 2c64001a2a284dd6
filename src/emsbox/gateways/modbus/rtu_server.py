"""The Modbus RTU slave: a thread reading requests from a serial port and answering them.

pyserial is kept to this module. A request ends when what arrived is whole frames with good
CRCs, or after a silence: 3.5 characters by the specification, but at least ``MIN_GAP_S``,
because USB serial adapters hand bytes on in bursts some milliseconds apart. A request for an
address that is not one of ours is left alone: other slaves share the line.
"""

from __future__ import annotations

import logging
import select
import threading

import serial

from emsbox.gateways.modbus.client import SERIAL_PARITY
from emsbox.gateways.modbus.config import ModbusConfig
from emsbox.gateways.modbus.protocol import ModbusError, answer, exception_pdu
from emsbox.gateways.modbus.rtu import BROADCAST, MAX_FRAME, response, silence_s, split_requests
from emsbox.gateways.modbus.units import COMMAND_WAIT_S, Units

log = logging.getLogger(__name__)

REOPEN_S = 5.0  # after the port failed (a USB adapter pulled out), try again this often
MIN_GAP_S = 0.02
WAIT_S = 0.5  # how long a read waits for a first byte before the stop flag is looked at


class SerialLineError(Exception):
    """The serial port cannot be opened as configured."""


def line_settings(config: ModbusConfig) -> tuple[object, ...]:
    """What, when changed, needs the port opened anew."""
    return (
        config.rtu_serial_port,
        config.rtu_baud_rate,
        config.rtu_data_bits,
        config.rtu_parity,
        config.rtu_stop_bits,
    )


class RtuServer:
    """The RTU slave of one serial port, answering from ``units`` (slave addresses from
    ``rtu_unit_id`` on)."""

    def __init__(self, config: ModbusConfig, units: Units) -> None:
        self.config = config
        self._units = units
        self._port: serial.Serial | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.requests = 0
        self.dropped = 0
        self.error: str | None = None

    def _open(self) -> serial.Serial:
        c = self.config
        try:
            return serial.Serial(
                port=c.rtu_serial_port,
                baudrate=c.rtu_baud_rate,
                bytesize=serial.EIGHTBITS if c.rtu_data_bits == 8 else serial.SEVENBITS,
                parity=SERIAL_PARITY[c.rtu_parity],
                stopbits=serial.STOPBITS_ONE if c.rtu_stop_bits == 1 else serial.STOPBITS_TWO,
                timeout=0,  # reads take what is there: the waiting is done with select
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SerialLineError(f"cannot open {c.rtu_serial_port}: {_reason(exc)}") from None

    def start(self) -> None:
        """Open the port (SerialLineError if it cannot be) and start answering."""
        self._port = self._open()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="modbus-rtu", daemon=True)
        self._thread.start()
        log.info("modbus: RTU slave on %s", self.config.rtu_serial_port)

    def stop(self) -> None:
        """Stop answering and close the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        if self._port is not None:
            self._port.close()
            self._port = None

    def _run(self) -> None:
        while not self._stop.is_set():
            port = self._port
            try:
                if port is None:
                    port = self._port = self._open()
                    self.error = None
                burst = self._read_request(port)
                if burst:
                    self._answer(port, burst)
            except (serial.SerialException, OSError, SerialLineError) as exc:
                # The line is gone (an adapter unplugged): report it, try again later.
                self.error = f"{self.config.rtu_serial_port}: {_reason(exc)}"
                log.error("modbus: RTU line: %s", self.error)
                if self._port is not None:
                    self._port.close()
                    self._port = None
                self._stop.wait(REOPEN_S)

    def _read_request(self, port: serial.Serial) -> bytes:
        """What arrives until it is whole frames, or until a silence (b"": nothing came)."""
        gap = max(silence_s(self.config.rtu_baud_rate), MIN_GAP_S)
        data = bytearray()
        while len(data) < MAX_FRAME:
            ready, _, _ = select.select([port.fileno()], [], [], gap if data else WAIT_S)
            if not ready:
                break
            chunk = port.read(max(1, port.in_waiting))
            if not chunk:  # readable but empty: the other end is gone
                raise serial.SerialException("the line was closed")
            data += chunk
            frames, dropped = split_requests(bytes(data))
            if frames and not dropped:
                break
        return bytes(data)

    def _answer(self, port: serial.Serial, burst: bytes) -> None:
        frames, dropped = split_requests(burst)
        self.dropped += dropped
        first = self.config.rtu_unit_id
        for frame in frames:
            if frame.address == BROADCAST:
                continue  # nothing to do: every register is read-only, and broadcasts get no answer
            unit = frame.address - first + 1
            reader = self._units.unit(unit)
            if reader is None:
                continue  # another slave's
            if self._units.takes_write(frame.pdu):
                pdu = self._write(unit, frame.pdu)
            else:
                pdu = answer(frame.pdu, reader)
            port.write(response(frame.address, pdu))
            self.requests += 1

    def _write(self, unit: int, pdu: bytes) -> bytes:
        try:
            request, futures = self._units.submit(unit, pdu, f"RTU {self.config.rtu_serial_port}")
        except ModbusError as error:
            return exception_pdu(pdu[0], error.code)
        errors: list[BaseException | None] = []
        for future in futures:
            try:
                future.result(COMMAND_WAIT_S)
                errors.append(None)
            except Exception as exc:  # any failure is the client's exception 04
                errors.append(exc)
        return self._units.outcome(request, errors)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())
