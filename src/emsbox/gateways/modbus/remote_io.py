"""The digital input and output on a remote I/O module over Modbus TCP (a DIN-rail module with
a few contacts): the input is a discrete input (FC 2) or a coil (FC 1), the output a coil
written with FC 5.

The controller reads the input and sets the output every 10 ms and must never wait for the
network, so a thread of its own talks to the module: it reads the input every poll interval
and writes the coil when the wanted state changes. ``read_input`` returns the last state
read; while the module does not answer, the input keeps that state, the thread tries again
with a growing pause, and ``health`` says what is wrong. After a failure the output's state
is written again, since the module may have restarted (and reset its coils) meanwhile.

It satisfies the controller's ``DigitalIO`` interface by its shape: the gateways and the
controller do not import each other, and the composition root (``emsbox.app``) joins them.
"""

from __future__ import annotations

import logging
import threading

from emsbox.gateways.modbus.client import ModbusClientError, TcpClient

log = logging.getLogger(__name__)

READ_COILS, READ_DISCRETE_INPUTS = 1, 2
RETRY_FIRST_S = 0.5  # the pause after the first failure, doubled after each further one
RETRY_MAX_S = 5.0


class RemoteIO:
    """One input and one output of a remote I/O module, polled in a thread of its own."""

    def __init__(
        self,
        host: str,
        port: int = 502,
        unit: int = 1,
        *,
        input_address: int = 0,
        input_is_coil: bool = False,
        output_address: int = 0,
        poll_interval_s: float = 0.1,
        timeout_s: float = 1.0,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        self._client = TcpClient(host, port, timeout_s)
        self._where = f"remote I/O module {host}:{port} unit {unit}"
        self._unit = unit
        self._input_address = input_address
        self._input_function = READ_COILS if input_is_coil else READ_DISCRETE_INPUTS
        self._input_name = f"{'coil' if input_is_coil else 'discrete input'} {input_address}"
        self._output_address = output_address
        self._poll_s = poll_interval_s
        self._retry_max_s = max(retry_max_s, poll_interval_s)
        self._lock = threading.Lock()
        self._input = False
        self._wanted: bool | None = None  # the output's state asked for; None: not yet
        self._written: bool | None = None  # as the module holds it; None: unknown
        self._error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="remote-io", daemon=True)
        self._thread.start()

    # -- the controller's side (never waits for the network) --------------------------------

    def read_input(self) -> bool:
        """Whether the input's contact was closed at the last poll that answered."""
        with self._lock:
            return self._input

    def write_output(self, closed: bool) -> None:
        """Ask for the output's coil to be set; it is written at once if this changes it."""
        with self._lock:
            if closed == self._wanted:
                return
            self._wanted = closed
        self._wake.set()

    def health(self) -> str | None:
        """None while the module answers; otherwise the last failure, in one line."""
        with self._lock:
            return self._error

    @property
    def healthy(self) -> bool:
        """Whether the module answered the last request."""
        return self.health() is None

    def close(self) -> None:
        """Stop polling and close the connection (the coil stays as the module holds it)."""
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._client.close()

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        pause_s = self._poll_s
        while not self._stop.is_set():
            try:
                self._exchange()
                pause_s = self._poll_s
            except Exception as exc:  # whatever fails, the thread must poll on and say so
                first = self.healthy
                pause_s = min(RETRY_FIRST_S if first else 2 * pause_s, self._retry_max_s)
                reason = str(exc) if isinstance(exc, ModbusClientError) else repr(exc)
                self._failed(reason)
            if self.healthy:
                self._wake.wait(pause_s)  # or less: a change of the output is written at once
                self._wake.clear()
            else:
                # Not woken by the output: the module did not answer, and the next attempt
                # writes it anyway.
                self._stop.wait(pause_s)

    def _exchange(self) -> None:
        """Write the output if the module may not hold it, then read the input."""
        with self._lock:
            wanted, written = self._wanted, self._written
        refused: ModbusClientError | None = None
        if wanted is not None and wanted != written:
            try:
                self._client.write_coil(self._unit, self._output_address, wanted)
                with self._lock:
                    self._written = wanted
            except ModbusClientError as exc:
                refused = ModbusClientError(f"coil {self._output_address}: {exc}", exc.code)
                if exc.code is None:  # no answer: the read would fare no better
                    raise refused from None
        try:
            bits = self._client.read_bits(self._unit, self._input_address, 1, self._input_function)
        except ModbusClientError as exc:
            raise ModbusClientError(f"{self._input_name}: {exc}", exc.code) from None
        with self._lock:
            self._input = bits[0]  # read even when the module refused the coil's write
        if refused is not None:
            raise refused
        with self._lock:
            recovered, self._error = self._error is not None, None
        if recovered:
            log.info("%s answers again", self._where)

    def _failed(self, reason: str) -> None:
        error = f"{self._where}: {reason}"
        with self._lock:
            changed = error != self._error
            self._error = error
            self._written = None  # written again once it answers: it may have restarted
        if changed:
            log.warning("%s", error)
