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
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path

from emsbox.bus import Bus
from emsbox.control.alarm_log import AlarmEvent, AlarmLog
from emsbox.control.alarms import Alarm, Event
from emsbox.control.config import AlarmRuleConfig, IoBackend, IoConfig, OutputFunction
from emsbox.control.inputs import DigitalInput
from emsbox.control.io import DigitalIO, SimulatedIO
from emsbox.control.pulse import PulseOutput, PulseState
from emsbox.control.tariffs import TariffCalendar
from emsbox.private_files import write_private

log = logging.getLogger(__name__)

TICK_S = 0.01
SAVE_EVERY_S = 1.0
CALENDAR_EVERY_S = 1.0  # how often the tariff calendar is looked at
CALENDAR_SOURCE = "tariff calendar"
ALARM_FILE = "alarms.sqlite3"
STALE_S = 10.0  # an older reading is no value: alarms on it neither raise nor clear
PULSE_FILE = "pulse-output.json"
SOURCE = "digital input"

# (load, action, tariff, requested_by) → the command's result.
Commander = Callable[[str, str, int | None, str], "Future[object]"]


class ControlError(Exception):
    """A request the controller refuses; the message says why."""


@dataclass
class _Watched:
    """A configured alarm and its state machine."""

    config: AlarmRuleConfig
    load: str
    alarm: Alarm
    value: float | None = None
    since_s: float | None = None  # raised at


@dataclass(frozen=True)
class AlarmStatus:
    """One alarm now, as the web app and the API show it."""

    name: str
    load: str
    variable: str
    condition: str
    low: float | None
    high: float | None
    active: bool
    acknowledged: bool
    latching: bool
    value: float | None
    since_s: float | None


@dataclass(frozen=True)
class AlarmNotice:
    """An alarm event, for notifications."""

    time_s: float
    name: str
    event: str
    load: str
    variable: str
    value: float | None
    by: str | None


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


class Controller:
    """Runs the digital input and output as configured; ``apply`` switches settings."""

    def __init__(
        self,
        bus: Bus,
        commander: Commander,
        data_dir: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._calendar: TariffCalendar | None = None
        self._loads: tuple[str, ...] = ()
        self._calendar_tariff: int | None = None
        self._calendar_due = 0.0
        self._watched: dict[str, _Watched] = {}
        self._alarm_log = AlarmLog(data_dir / ALARM_FILE)
        self.on_alarm: Callable[[AlarmNotice], None] | None = None
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
    ) -> None:
        """Run with ``config`` (the input's and the pulse's load default to ``main_load``);
        with a tariff ``calendar``, set every one of ``loads`` to its tariff as it changes;
        watch ``alarms``."""
        with self._lock:
            same = (config, main_load, loads, calendar) == (
                self._config,
                self._main,
                self._loads,
                self._calendar,
            ) and alarms == tuple(w.config for w in self._watched.values())
            if same and self._thread is not None:
                return
        self.stop()
        backend: DigitalIO = SimulatedIO()
        if config.backend is IoBackend.SIMULATED and isinstance(self._io, SimulatedIO):
            backend = self._io  # the simulated input keeps its state across changes
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
            self._watched = self._watch(alarms, main_load)
            self._calendar_tariff = None  # applied afresh at the first tick
        self._calendar_due = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="controller", daemon=True)
        self._thread.start()

    def _watch(self, rules: tuple[AlarmRuleConfig, ...], main_load: str) -> dict[str, _Watched]:
        """The alarms of ``rules``: unchanged ones keep their state, new ones take it from
        the history (a latched alarm survives a restart)."""
        saved = self._alarm_log.last_states()
        watched = {}
        for rule in rules:
            kept = self._watched.get(rule.name)
            if kept is not None and kept.config == rule:
                watched[rule.name] = kept
                continue
            alarm = Alarm(rule.rule())
            active, acknowledged = saved.get(rule.name, (False, True))
            alarm.state.active, alarm.state.acknowledged = active, acknowledged
            watched[rule.name] = _Watched(rule, rule.load or main_load, alarm)
        return watched

    def alarms(self) -> list[AlarmStatus]:
        """Every configured alarm now."""
        with self._lock:
            return [
                AlarmStatus(
                    name,
                    w.load,
                    w.config.variable,
                    w.config.condition.value,
                    w.config.low,
                    w.config.high,
                    w.alarm.state.active,
                    w.alarm.state.acknowledged,
                    w.config.latching,
                    w.value,
                    w.since_s if w.alarm.state.active else None,
                )
                for name, w in self._watched.items()
            ]

    def alarm_history(self, limit: int = 100, alarm: str | None = None) -> list[AlarmEvent]:
        """The newest alarm events first."""
        return self._alarm_log.events(limit, alarm)

    def acknowledge(self, name: str, by: str) -> bool:
        """``by`` acknowledges alarm ``name``; False if there was nothing to acknowledge.
        ControlError if there is no such alarm."""
        with self._lock:
            watched = self._watched.get(name)
            if watched is None:
                raise ControlError(f"no alarm named {name!r}")
            events = watched.alarm.acknowledge()
        for event in events:
            self._record(watched, event, by)
        return bool(events)

    def _record(self, w: _Watched, event: Event, by: str | None) -> None:
        now = self._clock()
        if event is Event.RAISED:
            w.since_s = now
            log.warning(
                "alarm raised: %s (%s.%s = %s)", w.config.name, w.load, w.config.variable, w.value
            )
        else:
            log.info("alarm %s: %s%s", event.value, w.config.name, f" by {by}" if by else "")
        try:
            self._alarm_log.add(now, w.config.name, event.value, w.value, by)
        except Exception:  # the alarm itself must still work without its history
            log.exception("cannot record the alarm event")
        if self.on_alarm is not None:
            notice = AlarmNotice(
                now, w.config.name, event.value, w.load, w.config.variable, w.value, by
            )
            try:
                self.on_alarm(notice)
            except Exception:
                log.exception("alarm notification failed")

    def _check_alarms(self) -> None:
        now = self._clock()
        with self._lock:
            watched = list(self._watched.values())
        for w in watched:
            reading = self._bus.latest(w.load)
            value = math.nan
            if reading is not None and now - reading.timestamp_s <= STALE_S:
                found = reading.values.get(w.config.variable)
                if found is None:
                    found = reading.counters.get(w.config.variable)
                value = math.nan if found is None else float(found)
            w.value = value if math.isfinite(value) else None
            with self._lock:
                events = w.alarm.update(now, value)
            for event in events:
                self._record(w, event, None)

    def stop(self) -> None:
        """Stop the loop (the pulse count is saved)."""
        thread = self._thread
        if thread is not None:
            self._stop.set()
            thread.join(5.0)
            self._thread = None
        self._save_pulses()

    def close(self) -> None:
        """Stop, and close the alarm history."""
        self.stop()
        self._alarm_log.close()

    def set_output(self, on: bool, requested_by: str) -> None:
        """Switch the output (when its function is remote); logged with who asked."""
        with self._lock:
            function = self._config.output_function
            if function is not OutputFunction.REMOTE:
                raise ControlError(f"the digital output's function is {function.value}, not remote")
            self._remote_on = on
        log.info("digital output switched %s by %s", "on" if on else "off", requested_by)

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
            )

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        last_save = time.monotonic()
        while not self._stop.wait(TICK_S):
            now = time.monotonic()
            try:
                self._tick(now)
            except Exception:  # the loop must outlive a failing backend or command
                log.exception("controller: tick failed")
            if now - last_save >= SAVE_EVERY_S:
                self._save_pulses()
                last_save = now

    def _tick(self, now: float) -> None:
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
            self._check_alarms()

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
            with self._lock:
                raised = any(
                    w.config.output and w.alarm.state.active for w in self._watched.values()
                )
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
