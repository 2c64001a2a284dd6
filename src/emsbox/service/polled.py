"""Loads whose values come from an external meter polled over Modbus (TCP, or RTU on a line
several meters share), rather than from samples the meter measures.

Each such load has a thread: at every publishing cycle (aligned to the wall clock, as the
measured loads' readings are) it reads the meter by its register map and publishes one
reading, with the meter's own energy counters. A meter that does not answer is reported
(the load turns unhealthy with the reason) and tried again at the next cycle; nothing else
waits for it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import serial

from emsbox.bus import Publisher, Reading
from emsbox.gateways.modbus.client import (
    SERIAL_PARITY,
    ModbusClientError,
    RtuClient,
    SerialLine,
    TcpClient,
)
from emsbox.gateways.modbus.meters import MeterModel, meter
from emsbox.loads import ModbusMeterSettings
from emsbox.samples import Wiring
from emsbox.service.acquisition import STALE_AFTER_S, Command, CommandError
from emsbox.variables import BY_NAME, Kind

log = logging.getLogger(__name__)

# The phases (and pairs) a wiring has: other phases' values a meter sends are left out.
_PHASES = {
    Wiring.SINGLE_PHASE: {"l1"},
    Wiring.SPLIT_PHASE: {"l1", "l2", "l12"},
    Wiring.THREE_PHASE_3W: {"l1", "l2", "l3", "l12", "l23", "l31"},
    Wiring.THREE_PHASE_4W: {"l1", "l2", "l3", "l12", "l23", "l31", "n"},
    Wiring.WILD_LEG: {"l1", "l2", "l3", "l12", "l23", "l31", "n"},
}


@dataclass(frozen=True)
class PolledLoad:
    """A load as the service lists it."""

    name: str
    wiring: Wiring


class SerialLines:
    """The serial ports external meters are on, each opened once and shared."""

    def __init__(self) -> None:
        self._lines: dict[str, SerialLine] = {}
        self._lock = threading.Lock()

    def get(self, settings: ModbusMeterSettings) -> SerialLine:
        """The line of ``settings.serial_port`` (opened now if needed; OSError if it cannot)."""
        with self._lock:
            line = self._lines.get(settings.serial_port)
            if line is None:
                try:
                    port = serial.Serial(
                        port=settings.serial_port,
                        baudrate=settings.baud_rate,
                        parity=SERIAL_PARITY[settings.parity],
                        stopbits=serial.STOPBITS_ONE
                        if settings.stop_bits == 1
                        else serial.STOPBITS_TWO,
                        timeout=0,
                    )
                except (serial.SerialException, ValueError) as exc:
                    raise OSError(f"cannot open {settings.serial_port}: {exc}") from None
                line = self._lines[settings.serial_port] = SerialLine(port)
            return line

    def close(self) -> None:
        """Close every port."""
        with self._lock:
            for line in self._lines.values():
                line.port.close()
            self._lines.clear()


def split_values(
    wiring: Wiring, polled: dict[str, float]
) -> tuple[dict[str, float], dict[str, float]]:
    """A meter's values for a load of ``wiring``: (instantaneous values, counters)."""
    phases = _PHASES[wiring]
    values: dict[str, float] = {}
    counters: dict[str, float] = {}
    for name, x in polled.items():
        variable = BY_NAME.get(name)
        if variable is None or not math.isfinite(x):
            continue
        if variable.phase is not None and variable.phase not in phases:
            continue
        if variable.kind is Kind.INSTANTANEOUS:
            values[name] = x
        elif variable.kind in (Kind.ENERGY, Kind.HOURS):
            counters[name] = x
    return values, counters


class PolledMeterAcquisition:
    """One load read from an external meter over Modbus, in a thread of its own."""

    def __init__(
        self,
        name: str,
        wiring: Wiring,
        settings: ModbusMeterSettings,
        lines: SerialLines,
        bus: Publisher,
        *,
        interval_s: float,
    ) -> None:
        self.loads = (PolledLoad(name, wiring),)
        self._settings, self._lines, self._bus = settings, lines, bus
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"modbus-meter-{name}", daemon=True)
        self.where = (
            f"{settings.host}:{settings.port}" if settings.host else settings.serial_port
        ) + f" unit {settings.unit_id}"
        self.last_error: str | None = None
        self.last_reading_s: float | None = None
        self.readings = 0

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop polling (after the read under way)."""
        self._stop.set()
        self._thread.join(timeout_s)

    def healthy(self) -> bool:
        """Whether the meter answered lately."""
        last = self.last_reading_s
        return self.last_error is None and last is not None and time.time() - last < STALE_AFTER_S

    def submit(self, command: Command) -> Future[dict[str, float | int | bool]]:
        """Refused: an external meter keeps its own counters and tariffs."""
        result: Future[dict[str, float | int | bool]] = Future()
        result.set_running_or_notify_cancel()
        result.set_exception(
            CommandError(
                f"load {command.load} is read from an external meter ({self.where}): its "
                "partial counters and tariff are set on that meter"
            )
        )
        return result

    def _client(self) -> TcpClient | RtuClient:
        s = self._settings
        if s.host:
            return TcpClient(s.host, s.port, s.timeout_s)
        return RtuClient(self._lines.get(s), s.timeout_s)

    def _run(self) -> None:
        (load,) = self.loads
        model = MeterModel(self._settings.model.value)
        client: TcpClient | RtuClient | None = None
        polled = None
        due = math.ceil(time.time() / self._interval_s) * self._interval_s
        while not self._stop.wait(max(0.0, due - time.time())):
            try:
                if client is None:
                    client = self._client()
                    polled = meter(model, client, self._settings.unit_id, self._settings.retries)
                assert polled is not None
                values, counters = split_values(load.wiring, polled.poll())
                self._publish(load, values, counters)
            except (ModbusClientError, OSError) as exc:
                self._failed(f"{self.where}: {exc}")
            now = time.time()
            due = max(
                due + self._interval_s, math.floor(now / self._interval_s + 1) * self._interval_s
            )
        if isinstance(client, TcpClient):
            client.close()

    def _publish(
        self, load: PolledLoad, values: dict[str, float], counters: dict[str, float]
    ) -> None:
        now = time.time()
        self._bus.publish(
            Reading(
                load=load.name,
                wiring=load.wiring,
                timestamp_s=now,
                duration_s=self._interval_s,
                windows=1,
                values=values,
                minimum=values,
                maximum=values,
                counters=counters,
                partial_running=False,
            )
        )
        if self.last_error is not None:
            log.info("modbus meter of %s answers again", load.name)
        self.last_error, self.last_reading_s = None, now
        self.readings += 1

    def _failed(self, reason: str) -> None:
        if reason != self.last_error:
            log.warning("modbus meter of %s: %s", self.loads[0].name, reason)
        self.last_error = reason
