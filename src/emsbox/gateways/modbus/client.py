"""A Modbus client for the meters emsbox polls: over TCP, or RTU on a serial line that
several meters may share; over TCP also the bits of a remote I/O module (coils and discrete
inputs read, a coil written). One request at a time per connection, with a timeout; a failure
is one ModbusClientError with a one-line reason, and the next request starts afresh."""

from __future__ import annotations

import itertools
import select
import socket
import struct
import threading
import time

import serial

from emsbox.gateways.modbus.protocol import MAX_READ_REGISTERS
from emsbox.gateways.modbus.rtu import crc_ok, with_crc
from emsbox.serial_settings import SerialParity

# pyserial's names of the parities.
SERIAL_PARITY = {
    SerialParity.NONE: serial.PARITY_NONE,
    SerialParity.EVEN: serial.PARITY_EVEN,
    SerialParity.ODD: serial.PARITY_ODD,
}

EXCEPTIONS = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x06: "server device busy",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}

MAX_READ_BITS = 2000  # FC 1 and 2: the spec's limit
BIT_READS = (1, 2)  # read coils, read discrete inputs
WRITE_SINGLE_COIL = 5
COIL_ON, COIL_OFF = 0xFF00, 0x0000  # FC 5's only two values (the spec's 6.5)


class ModbusClientError(Exception):
    """A read that failed: no answer in time, an exception answer (``code``), or garbage."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def _request(unit: int, function: int, address: int, count: int) -> bytes:
    if not 1 <= count <= MAX_READ_REGISTERS:
        raise ValueError(f"a read is 1 to {MAX_READ_REGISTERS} registers, not {count}")
    return struct.pack(">BBHH", unit, function, address, count)


def _raise_exception(pdu: bytes, function: int) -> None:
    """ModbusClientError with its code if ``pdu`` is an exception answer to ``function``."""
    if len(pdu) >= 2 and pdu[0] == function | 0x80:
        reason = EXCEPTIONS.get(pdu[1], "unknown exception")
        raise ModbusClientError(f"exception {pdu[1]:02X} ({reason})", pdu[1])


def _data(pdu: bytes, function: int, count: int) -> bytes:
    """The registers of a read's answer PDU (ModbusClientError for an exception or garbage)."""
    _raise_exception(pdu, function)
    if len(pdu) != 2 + 2 * count or pdu[0] != function or pdu[1] != 2 * count:
        raise ModbusClientError(f"a malformed answer ({len(pdu)} bytes)")
    return pdu[2:]


class TcpClient:
    """Modbus TCP to one host and port; the connection is made when needed and kept."""

    def __init__(self, host: str, port: int, timeout_s: float = 1.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)

    def read(self, unit: int, address: int, count: int, function: int = 3) -> bytes:
        """``count`` registers from ``address`` of ``unit`` (FC 3, or 4), as big-endian bytes."""
        return _data(self._transact(_request(unit, function, address, count)), function, count)

    def read_bits(self, unit: int, address: int, count: int, function: int = 2) -> list[bool]:
        """``count`` discrete inputs (FC 2) or coils (FC 1) from ``address`` of ``unit``."""
        if function not in BIT_READS:
            raise ValueError(f"bits are read with FC 1 or 2, not {function}")
        if not 1 <= count <= MAX_READ_BITS:
            raise ValueError(f"a read is 1 to {MAX_READ_BITS} bits, not {count}")
        pdu = self._transact(struct.pack(">BBHH", unit, function, address, count))
        _raise_exception(pdu, function)
        size = (count + 7) // 8
        if len(pdu) != 2 + size or pdu[0] != function or pdu[1] != size:
            raise ModbusClientError(f"a malformed answer ({len(pdu)} bytes)")
        # The first bit is the least significant of the first byte (the spec's 6.1, 6.2).
        return [bool(pdu[2 + k // 8] >> (k % 8) & 1) for k in range(count)]

    def write_coil(self, unit: int, address: int, on: bool) -> None:
        """Set the coil at ``address`` of ``unit`` on or off (FC 5)."""
        body = struct.pack(">BBHH", unit, WRITE_SINGLE_COIL, address, COIL_ON if on else COIL_OFF)
        pdu = self._transact(body)
        _raise_exception(pdu, WRITE_SINGLE_COIL)
        if pdu != body[1:]:  # the normal answer echoes the request (the spec's 6.5)
            raise ModbusClientError(f"a malformed answer ({len(pdu)} bytes)")

    def _transact(self, body: bytes) -> bytes:
        """Send ``body`` (unit id and PDU) and return the answer's PDU."""
        tid = next(self._ids) & 0xFFFF
        frame = struct.pack(">HHH", tid, 0, len(body)) + body
        try:
            sock = self._connected()
            sock.sendall(frame)
            while True:
                header = self._recv(sock, 7)
                answer_tid, protocol, length, _ = struct.unpack(">HHHB", header)
                if protocol != 0 or not 2 <= length <= 254:
                    raise ModbusClientError("not a Modbus TCP answer")
                pdu = self._recv(sock, length - 1)
                if answer_tid == tid:  # an older, late answer is skipped
                    return pdu
        except ModbusClientError:
            self.close()
            raise
        except TimeoutError:
            self.close()
            raise ModbusClientError(f"no answer within {self.timeout_s:g} s") from None
        except OSError as exc:
            self.close()
            # The caller says which meter; the reason is enough here.
            raise ModbusClientError(exc.strerror or str(exc)) from None
        except UnicodeError:  # a name no lookup can take ("a..b"): the IDNA codec refuses it
            self.close()
            message = f"{self.host!r} is not a host name that can be looked up"
            raise ModbusClientError(message) from None

    def _connected(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
        return self._sock

    @staticmethod
    def _recv(sock: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ModbusClientError("the connection was closed")
            data += chunk
        return data

    def close(self) -> None:
        """Close the connection (the next read opens a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class SerialLine:
    """A serial port several meters share: one request at a time on it. Open the port with
    ``timeout=0``: reads wait with select, up to each client's timeout."""

    def __init__(self, port: serial.Serial) -> None:
        self.port = port
        self.lock = threading.Lock()


class RtuClient:
    """Modbus RTU to one slave address on a shared ``SerialLine``."""

    def __init__(self, line: SerialLine, timeout_s: float = 1.0) -> None:
        self.line, self.timeout_s = line, timeout_s

    def read(self, unit: int, address: int, count: int, function: int = 3) -> bytes:
        """``count`` registers from ``address`` of slave ``unit``, as big-endian bytes."""
        request = with_crc(_request(unit, function, address, count))
        with self.line.lock:
            port = self.line.port
            deadline = time.monotonic() + self.timeout_s
            try:
                port.reset_input_buffer()  # what an earlier, late answer left
                port.write(request)
                head = _read(port, 3, deadline)
                if len(head) < 3:
                    raise ModbusClientError(f"slave {unit}: no answer within {self.timeout_s:g} s")
                rest = 2 if head[1] & 0x80 else head[2] + 2
                frame = head + _read(port, rest, deadline)
            except (serial.SerialException, OSError) as exc:
                raise ModbusClientError(str(exc)) from None
        if len(frame) < 3 + rest or not crc_ok(frame):
            raise ModbusClientError(f"slave {unit}: a truncated or corrupt answer")
        if frame[0] != unit:
            raise ModbusClientError(f"an answer from slave {frame[0]}, not {unit}")
        return _data(frame[1:-2], function, count)


def _read(port: serial.Serial, n: int, deadline: float) -> bytes:
    """Up to ``n`` bytes, waiting no longer than ``deadline`` (the port's own timeout is left
    as it is: changing it reconfigures the line)."""
    data = b""
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([port.fileno()], [], [], left)
        if ready:
            data += port.read(min(n - len(data), max(1, port.in_waiting)))
    return data


def read_span(
    client: TcpClient | RtuClient, unit: int, address: int, count: int, retries: int = 1
) -> bytes:
    """``count`` registers from ``address`` in reads of at most 125, each tried again up to
    ``retries`` times after a timeout or garbage (an exception answer is not retried)."""
    out = b""
    while count > 0:
        n = min(count, MAX_READ_REGISTERS)
        for attempt in range(retries + 1):
            try:
                out += client.read(unit, address, n)
                break
            except ModbusClientError as exc:
                if exc.code is not None or attempt == retries:
                    raise
        address, count = address + n, count - n
    return out
