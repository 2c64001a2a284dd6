"""The controller's loop: the digital input's functions and the digital output's.

One thread samples the input every ``TICK_S`` (debounced by ``DigitalInput``) and sends the
commands of its function through the same queue as every other command, logged with the
source "digital input". The same tick drives the output: pulses from a load's energy counter
(``PulseOutput``, its state saved every second so that a restart neither loses nor repeats
more than the last second's pulses), or the state set remotely, or off; a normally closed
output inverts the contact.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path

from emsbox.bus import Bus
from emsbox.control.alarm_log import AlarmEvent
from emsbox.control.alarm_watch import AlarmStatus, AlarmWatch, UnknownAlarmError
from emsbox.control.config import AlarmRuleConfig, IoBackend, IoConfig, OutputFunction
from emsbox.control.gpio import open_gpio
from emsbox.control.inputs import DigitalInput
from emsbox.control.io import DigitalIO, IoError, ReportsHealth, SimulatedIO, UnavailableIO
from emsbox.control.pulse import PulseOutput, PulseState
from emsbox.control.tariffs import TariffCalendar
from emsbox.private_files import write_private

log = logging.getLogger(__name__)

TICK_S = 0.01
SAVE_EVERY_S = 1.0
CALENDAR_EVERY_S = 1.0  # how often the tariff calendar is looked at
CALENDAR_SOURCE = "tariff calendar"
PULSE_FILE = "pulse-output.json"
REOPEN_S = 10.0  # how often a backend that could not be opened is tried again
STOP_WAIT_S = 5.0  # a loop normally ends within a tick; one stuck longer is waited for ...
STOP_LONG_WAIT_S = 25.0  # ... this much more, then left to end by itself after its tick
SOURCE = "digital input"

# (load, action, tariff, requested_by) → the command's result.
Commander = Callable[[str, str, int | None, str], "Future[object]"]


class ControlError(Exception):
    """A request the controller refuses; the message says why."""


@dataclass(frozen=True)
class IoState:
    """The input and output as the web app and the API show them."""

    backend: str
    input_function: str
    input_closed: bool
    input_active: bool
    output_function: str
    output_on: bool
    output_closed: bool
    pulses: int | None
    pulses_waiting: int | None
    max_pulse_power_kw: float | None
    backend_ok: bool = True
    backend_error: str | None = None  # why the backend does not work, in one line


def open_builtin(config: IoConfig) -> DigitalIO:
    """The hardware backends the controller opens itself (GPIO); IoError for the others."""
    if config.backend is IoBackend.GPIO:
        return open_gpio(config)
    raise IoError(f"the {config.backend.value} I/O backend is not available in this program")


def backend_health(io: DigitalIO) -> str | None:
    """None while ``io`` works (or cannot tell); otherwise why not."""
    return io.health() if isinstance(io, ReportsHealth) else None


def _backend_settings(config: IoConfig) -> dict[str, object]:
    """The settings that make the backend: which one, and its own (``gpio_…``, ``modbus_…``)."""
    own = config.backend.value + "_"
    return {k: v for k, v in config.model_dump().items() if k == "backend" or k.startswith(own)}


def _close_quietly(io: DigitalIO) -> None:
    try:
        io.close()
    except Exception:  # a backend that fails to close must not keep the next one from opening
        log.exception("digital I/O: closing the backend failed")


class Controller:
    """Runs the digital input and output as configured; ``apply`` switches settings."""

    def __init__(
        self,
        bus: Bus,
        commander: Commander,
        data_dir: Path,
        clock: Callable[[], float] = time.time,
        open_io: Callable[[IoConfig], DigitalIO] | None = None,
    ) -> None:
        """``open_io`` opens every backend but the simulated one (IoError when it cannot):
        the composition root passes one that also knows the gateways' (Modbus)."""
        self._bus = bus
        self._clock = clock
        self._open_io = open_io or open_builtin
        self._reopen_due = 0.0
        self._calendar: TariffCalendar | None = None
        self._loads: tuple[str, ...] = ()
        self._calendar_tariff: int | None = None
        self._calendar_due = 0.0
        self.alarm_watch = AlarmWatch(bus, data_dir, clock)
        self._commander = commander
        self._data_dir = data_dir
        self._lock = threading.Lock()
        self._config = IoConfig()
        self._main = "main"
        self._io: DigitalIO = SimulatedIO()
        self._input = DigitalInput(self._config.input_function)
        self._pulse: PulseOutput | None = None
        self._remote_on = False
        self._output_closed = False
        self._input_closed = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._saved: PulseState | None = None  # what the file holds

    # -- control -----------------------------------------------------------------------------

    def apply(
        self,
        config: IoConfig,
        main_load: str,
        *,
        loads: tuple[str, ...] = (),
        calendar: TariffCalendar | None = None,
        alarms: tuple[AlarmRuleConfig, ...] = (),
        system_alarms: bool = True,
        system_output: bool = False,
    ) -> None:
        """Run with ``config`` (the input's and the pulse's load default to ``main_load``);
        with a tariff ``calendar``, set every one of ``loads`` to its tariff as it changes;
        watch ``alarms`` and, with ``system_alarms``, the system itself (switching the alarm
        output too with ``system_output``)."""
        self.alarm_watch.configure(
            alarms, main_load, system=system_alarms, system_output=system_output
        )
        with self._lock:
            same = (config, main_load, loads, calendar) == (
                self._config,
                self._main,
                self._loads,
                self._calendar,
            )
            if same and self._thread is not None:
                return
        self.stop()
        backend = self._backend_for(config)
        with self._lock:
            self._config, self._main, self._io = config, main_load, backend
            self._input = DigitalInput(
                config.input_function, config.input_debounce_s, config.input_inverted
            )
            self._pulse = None
            if config.output_function is OutputFunction.PULSE:
                self._pulse = PulseOutput(
                    config.pulses_per_kwh,
                    config.pulse_width_s,
                    normally_closed=config.output_normally_closed,
                    state=self._saved_pulses(config),
                )
            if config.output_function is not OutputFunction.REMOTE:
                self._remote_on = False
            self._loads, self._calendar = loads, calendar
            self._calendar_tariff = None  # applied afresh at the first tick
        self._calendar_due = 0.0
        # Each loop has its own stop event: a loop that outlived its stop() (a tick stuck in a
        # backend) ends after that tick instead of running on beside the new one.
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._stop,), name="controller", daemon=True
        )
        self._thread.start()
        self.alarm_watch.start()

    def _backend_for(self, config: IoConfig) -> DigitalIO:
        """The current backend if its settings are unchanged (the simulated input keeps its
        state, the hardware stays claimed); otherwise it is closed and a new one opened."""
        current = self._io
        kept = _backend_settings(config) == _backend_settings(self._config)
        if kept and not isinstance(current, UnavailableIO):
            return current
        _close_quietly(current)  # first: a GPIO line can be requested by one holder only
        return self._open(config)

    def _open(self, config: IoConfig) -> DigitalIO:
        """The backend of ``config``, or one that tells why it could not be opened."""
        if config.backend is IoBackend.SIMULATED:
            return SimulatedIO()
        try:
            return self._open_io(config)
        except IoError as exc:
            reason = str(exc)
        except Exception as exc:  # a plugin's or a library's surprise must not stop the rest
            log.exception("digital I/O: opening the %s backend failed", config.backend.value)
            reason = f"cannot open the {config.backend.value} backend: {exc}"
        log.warning("digital I/O (%s): %s", config.backend.value, reason)
        self._reopen_due = time.monotonic() + REOPEN_S
        return UnavailableIO(reason)

    def _reopen(self, now: float) -> None:
        """Try again, every ``REOPEN_S``, to open a backend that could not be opened."""
        with self._lock:
            config, io = self._config, self._io
        if not isinstance(io, UnavailableIO) or now < self._reopen_due:
            return
        self._reopen_due = now + REOPEN_S
        try:
            backend = self._open_io(config)
        except Exception as exc:
            if str(exc) != io.error:
                log.warning("digital I/O (%s): %s", config.backend.value, exc)
                io.error = str(exc)
            return
        log.info("digital I/O (%s) opened", config.backend.value)
        with self._lock:
            self._io = backend

    def stop(self) -> None:
        """Stop the loop (the pulse count is saved)."""
        thread = self._thread
        if thread is not None:
            self._stop.set()
            thread.join(STOP_WAIT_S)
            if thread.is_alive():
                log.warning("controller: a tick is taking long; waiting for it to end")
                thread.join(STOP_LONG_WAIT_S)
            self._thread = None
        self._save_pulses()

    def close(self) -> None:
        """Stop, release the input and output, and close the alarm history."""
        self.stop()
        _close_quietly(self._io)
        self._io = UnavailableIO("closed")  # an apply() after this opens the backend afresh
        self.alarm_watch.close()  # stops its thread too

    def alarms(self) -> list[AlarmStatus]:
        """Every configured alarm now, then the system's own."""
        return self.alarm_watch.alarms()

    def alarm_history(self, limit: int = 100, alarm: str | None = None) -> list[AlarmEvent]:
        """The newest alarm events first."""
        return self.alarm_watch.history(limit, alarm)

    def acknowledge(self, name: str, by: str) -> bool:
        """``by`` acknowledges alarm ``name``; False if there was nothing to acknowledge.
        ControlError if there is no such alarm."""
        try:
            return self.alarm_watch.acknowledge(name, by)
        except UnknownAlarmError as exc:
            raise ControlError(str(exc)) from None

    def set_output(self, on: bool, requested_by: str) -> None:
        """Switch the output (when its function is remote); logged with who asked."""
        with self._lock:
            function = self._config.output_function
            if function is not OutputFunction.REMOTE:
                raise ControlError(f"the digital output's function is {function.value}, not remote")
            self._remote_on = on
        log.info("digital output switched %s by %s", "on" if on else "off", requested_by)

    def output_on(self) -> bool:
        """Whether the output is on (its contact closed, or open when normally closed)."""
        with self._lock:
            if self._config.output_function is OutputFunction.REMOTE:
                return self._remote_on  # as switched, before the next tick sets the contact
            return self._output_closed != self._config.output_normally_closed

    def set_input(self, closed: bool, requested_by: str) -> None:
        """Close or open the simulated input's contact."""
        with self._lock:
            io = self._io
        if not isinstance(io, SimulatedIO):
            raise ControlError("only a simulated input can be switched from here")
        log.info("simulated digital input %s by %s", "closed" if closed else "opened", requested_by)
        io.set_input(closed)

    def state(self) -> IoState:
        """The input and output now."""
        with self._lock:
            io = self._io
        error = backend_health(io)  # outside the lock: a backend takes its own
        with self._lock:
            c, pulse = self._config, self._pulse
            return IoState(
                c.backend.value,
                c.input_function.value,
                self._input_closed,
                self._input.active,
                c.output_function.value,
                self._output_closed != c.output_normally_closed,
                self._output_closed,
                None if pulse is None else pulse.emitted,
                None if pulse is None else pulse.waiting,
                None if pulse is None else pulse.max_power_kw,
                error is None,
                error,
            )

    # -- the loop ----------------------------------------------------------------------------

    def _run(self, stop: threading.Event) -> None:
        last_save = time.monotonic()
        while not stop.wait(TICK_S):
            now = time.monotonic()
            try:
                self._tick(now)
            except Exception:  # the loop must outlive a failing backend or command
                log.exception("controller: tick failed")
            if now - last_save >= SAVE_EVERY_S:
                self._save_pulses()
                last_save = now

    def _tick(self, now: float) -> None:
        self._reopen(now)
        with self._lock:
            config, io, digital_input = self._config, self._io, self._input
        closed = io.read_input()
        commands = digital_input.feed(now, closed)
        self._input_closed = closed
        if commands is not None:
            load = config.input_load or self._main
            state = "active" if digital_input.active else "inactive"
            log.info("digital input %s (%s)", state, config.input_function.value)
            for command in commands:
                future = self._commander(load, command.action, command.tariff, SOURCE)
                future.add_done_callback(_log_failure)
        level = self._output_level(config, now)
        io.write_output(level)
        self._output_closed = level
        if now >= self._calendar_due:
            self._calendar_due = now + CALENDAR_EVERY_S
            if self._calendar is not None:
                self._follow_calendar(self._calendar)

    def _follow_calendar(self, calendar: TariffCalendar) -> None:
        tariff = calendar.tariff_at(self._clock())
        if tariff == self._calendar_tariff:
            return
        log.info("tariff calendar: tariff %d from now", tariff)
        for load in self._loads:
            future = self._commander(load, "tariff", tariff, CALENDAR_SOURCE)
            future.add_done_callback(_log_failure)
        self._calendar_tariff = tariff

    def _output_level(self, config: IoConfig, now: float) -> bool:
        nc = config.output_normally_closed
        if config.output_function is OutputFunction.REMOTE:
            return self._remote_on != nc
        if config.output_function is OutputFunction.ALARM:
            raised = self.alarm_watch.output_wanted()
            return raised != nc
        pulse = self._pulse
        if pulse is None:
            return nc
        reading = self._bus.latest(config.pulse_load or self._main)
        energy = float("nan") if reading is None else reading.counters.get(config.pulse_counter)
        return pulse.step(now, float("nan") if energy is None else energy)

    # -- the pulse count across restarts -----------------------------------------------------------

    def _pulse_path(self) -> Path:
        return self._data_dir / PULSE_FILE

    def _saved_pulses(self, config: IoConfig) -> PulseState | None:
        """The saved count, if it was saved for the same counter and constant."""
        try:
            data = json.loads(self._pulse_path().read_text(encoding="utf-8"))
            same = (data["load"], data["counter"], data["pulses_per_kwh"]) == (
                config.pulse_load or self._main,
                config.pulse_counter,
                config.pulses_per_kwh,
            )
            return PulseState(**data["state"]) if same else None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "%s unreadable (%s): the pulse count starts afresh", self._pulse_path(), exc
            )
            return None

    def _save_pulses(self) -> None:
        with self._lock:
            pulse, config = self._pulse, self._config
        if pulse is None or pulse.state() == self._saved:
            return  # unchanged: spare the flash
        data = {
            "load": config.pulse_load or self._main,
            "counter": config.pulse_counter,
            "pulses_per_kwh": config.pulses_per_kwh,
            "state": asdict(pulse.state()),
        }
        try:
            write_private(self._pulse_path(), json.dumps(data).encode())
            self._saved = pulse.state()
        except OSError as exc:
            log.warning("cannot save the pulse count: %s", exc)


def _log_failure(future: Future[object]) -> None:
    exc = future.exception()
    if exc is not None:
        log.warning("digital input: the command failed: %s", exc)
