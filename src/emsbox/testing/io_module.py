"""A remote I/O module for tests: a real Modbus TCP server on 127.0.0.1 holding coils and
discrete inputs, as a DIN-rail module does.

It answers read coils (FC 1), read discrete inputs (FC 2) and write single coil (FC 5), with
the spec's exceptions (01 for another function, 02 for an address it does not have, 03 for a
bad quantity or coil value). It can be stopped, which drops every connection, and started
again on the same port, as a module that loses power and comes back with its coils off.
"""

from __future__ import annotations

import socket
import struct
import threading
from contextlib import suppress

MBAP = struct.Struct(">HHHB")  # transaction id, protocol id, length, unit id
MAX_BITS = 2000  # FC 1 and 2: the spec's limit


class IoModule:
    """Coils and discrete inputs served over Modbus TCP on 127.0.0.1."""

    def __init__(self, coils: int = 16, discrete_inputs: int = 16) -> None:
        self._lock = threading.Lock()
        self._coils = [False] * coils
        self._inputs = [False] * discrete_inputs
        self.coil_writes: list[tuple[int, bool]] = []  # every FC 5 received, in order
        self.port = 0
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []

    # -- the test's side -----------------------------------------------------------------------

    def set_input(self, address: int, closed: bool) -> None:
        """Close or open discrete input ``address``."""
        with self._lock:
            self._inputs[address] = closed

    def set_coil(self, address: int, on: bool) -> None:
        """Set coil ``address`` as a local program of the module would."""
        with self._lock:
            self._coils[address] = on

    def coil(self, address: int) -> bool:
        """Coil ``address`` now."""
        with self._lock:
            return self._coils[address]

    def start(self) -> None:
        """Listen (again on the same port, once it has had one) and answer in threads."""
        listener = socket.create_server(("127.0.0.1", self.port))
        self.port = listener.getsockname()[1]
        self._listener = listener
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, *, power_loss: bool = True) -> None:
        """Close the listener and every connection; with ``power_loss`` the coils go off."""
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone may not.
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            connections = list(self._connections)
            if power_loss:
                self._coils = [False] * len(self._coils)
        for conn in connections:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5.0)
        self._threads = []

    def __enter__(self) -> IoModule:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- the server ----------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            with self._lock:
                self._connections.add(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        try:
            while True:
                header = _recv(conn, MBAP.size)
                if header is None:
                    return
                tid, protocol, length, unit = MBAP.unpack(header)
                pdu = _recv(conn, length - 1) if protocol == 0 and length >= 2 else None
                if pdu is None:
                    return
                answer = self._answer(pdu)
                conn.sendall(MBAP.pack(tid, 0, len(answer) + 1, unit) + answer)
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def _answer(self, pdu: bytes) -> bytes:
        """The answer PDU to a request PDU (the Modbus Application Protocol, 6.1, 6.2, 6.5)."""
        function = pdu[0]
        if function in (1, 2) and len(pdu) == 5:
            address, count = struct.unpack(">HH", pdu[1:])
            with self._lock:
                table = self._coils if function == 1 else self._inputs
                if not 1 <= count <= MAX_BITS:
                    return bytes([function | 0x80, 0x03])
                if address + count > len(table):
                    return bytes([function | 0x80, 0x02])
                bits = table[address : address + count]
            packed = bytearray((count + 7) // 8)
            for k, bit in enumerate(bits):
                packed[k // 8] |= bit << (k % 8)
            return bytes([function, len(packed)]) + bytes(packed)
        if function == 5 and len(pdu) == 5:
            address, value = struct.unpack(">HH", pdu[1:])
            if value not in (0xFF00, 0x0000):
                return bytes([function | 0x80, 0x03])
            with self._lock:
                if address >= len(self._coils):
                    return bytes([function | 0x80, 0x02])
                self._coils[address] = value == 0xFF00
                self.coil_writes.append((address, value == 0xFF00))
            return pdu
        return bytes([function | 0x80, 0x01])


def _recv(conn: socket.socket, n: int) -> bytes | None:
    """Exactly ``n`` bytes, or None once the peer has closed."""
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data
