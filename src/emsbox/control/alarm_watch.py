"""The alarms being watched: the configured rules on measured values and the built-in alarms
for the system itself, their history and their notices.

``AlarmWatch.check`` runs once a second in a thread of its own (so that a slow check, a store
busy answering, never holds up the controller's 10-ms loop of the digital I/O): each rule
takes its load's latest value from the bus (a value that has not come for ``STALE_S`` is
none: it neither raises nor clears), and every ``SYSTEM_EVERY_S`` the system's checks
(``system_alarms.py``) run through the same state machine. Every transition is recorded in
``alarms.sqlite3`` and handed to ``on_alarm`` (MQTT, e-mail).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emsbox.bus import Bus
from emsbox.control.alarm_log import AlarmEvent, AlarmLog
from emsbox.control.alarms import Alarm, Event
from emsbox.control.config import AlarmRuleConfig
from emsbox.control.system_alarms import ClockWatch, SystemCondition

log = logging.getLogger(__name__)

ALARM_FILE = "alarms.sqlite3"
STALE_S = 10.0  # a reading that came longer ago is no value: it neither raises nor clears
SYSTEM_EVERY_S = 5.0  # how often the system's own checks run (they read the store)
CHECK_EVERY_S = 1.0


class UnknownAlarmError(LookupError):
    """No alarm has that name."""


@dataclass
class _Watched:
    """An alarm and its state machine: a configured rule's, or a built-in system alarm's."""

    name: str
    load: str
    variable: str
    alarm: Alarm
    config: AlarmRuleConfig | None = None  # None: a system alarm
    value: float | None = None
    since_s: float | None = None  # raised at
    detail: str = ""  # a system alarm's: what is wrong, or was last


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
    system: bool = False
    detail: str = ""


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
    detail: str = ""


class AlarmWatch:
    """The configured alarms and the system's, checked by ``check``; thread-safe."""

    def __init__(
        self,
        bus: Bus,
        data_dir: Path,
        clock: Callable[[], float] = time.time,
        ticks: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._clock = clock
        # The delays run on ``ticks``: a wall clock set by NTP (a device without a battery
        # clock jumps by days at boot) would otherwise raise an alarm early or hold it back.
        self._ticks = ticks
        self._lock = threading.Lock()
        self._log = AlarmLog(data_dir / ALARM_FILE)
        self._rules: dict[str, _Watched] = {}
        self._system: dict[str, _Watched] = {}
        self._system_enabled = True
        self._system_output = False
        self._system_due = 0.0
        self.clock_watch = ClockWatch()
        # The service's checks of its own parts; set by whoever owns those parts.
        self.system_checks: Callable[[], list[SystemCondition]] | None = None
        self.on_alarm: Callable[[AlarmNotice], None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Check every ``CHECK_EVERY_S`` in a thread of its own (once started, it runs on)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._stop,), name="alarms", daemon=True
        )
        self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(CHECK_EVERY_S):
            try:
                self.check()
            except Exception:  # the alarms must outlive a failing check
                log.exception("alarms: the check failed")

    def rules(self) -> tuple[AlarmRuleConfig, ...]:
        """The rules watched now."""
        with self._lock:
            return tuple(w.config for w in self._rules.values() if w.config is not None)

    def configure(
        self,
        rules: tuple[AlarmRuleConfig, ...],
        main_load: str,
        *,
        system: bool = True,
        system_output: bool = False,
    ) -> None:
        """Watch ``rules`` (a rule without a load watches ``main_load``) and, with ``system``,
        the system itself: unchanged rules keep their state, new ones take it from the
        history (a latched alarm survives a restart); built-in alarms turned off clear."""
        saved = self._log.last_states()
        with self._lock:
            watched = {}
            for rule in rules:
                kept = self._rules.get(rule.name)
                if (
                    kept is not None
                    and kept.config == rule
                    and kept.load == (rule.load or main_load)
                ):
                    watched[rule.name] = kept
                    continue
                alarm = _restored(Alarm(rule.rule()), saved.get(rule.name))
                load = rule.load or main_load
                watched[rule.name] = _Watched(rule.name, load, rule.variable, alarm, rule)
            self._rules = watched
            dropped = [] if system else list(self._system.values())
            if not system:
                self._system = {}
            self._system_enabled, self._system_output = system, system_output
            self._system_due = 0.0  # at the next check
        for w in dropped:
            if w.alarm.state.active:
                self._record(w, Event.CLEARED, None)  # turned off: the history says so

    def alarms(self) -> list[AlarmStatus]:
        """Every configured alarm now, then the system's own."""
        with self._lock:
            every = [*self._rules.values(), *self._system.values()]
        return [_status(w) for w in every]

    def history(self, limit: int = 100, alarm: str | None = None) -> list[AlarmEvent]:
        """The newest alarm events first."""
        return self._log.events(limit, alarm)

    def acknowledge(self, name: str, by: str) -> bool:
        """``by`` acknowledges alarm ``name``; False if there was nothing to acknowledge.
        UnknownAlarmError if there is no such alarm."""
        with self._lock:
            watched = self._rules.get(name) or self._system.get(name)
            if watched is None:
                raise UnknownAlarmError(f"no alarm named {name!r}")
            events = watched.alarm.acknowledge()
        for event in events:
            self._record(watched, event, by)
        return bool(events)

    def output_wanted(self) -> bool:
        """Whether an alarm that drives the digital output is raised."""
        with self._lock:
            rules = any(
                w.config is not None and w.config.output and w.alarm.state.active
                for w in self._rules.values()
            )
            system = self._system_output and any(
                w.alarm.state.active for w in self._system.values()
            )
            return rules or system

    def check(self) -> None:
        """Look at every rule's value now, and at the system when its checks are due."""
        ticks = self._ticks()
        with self._lock:
            watched = list(self._rules.values())
        for w in watched:
            reading = self._bus.latest(w.load)
            value = math.nan
            # Fresh by when it came, not by its time stamp, which keeps the time base the
            # measuring started with when the clock is set (see the clock-jump alarm).
            age = self._bus.age_s(w.load)
            if reading is not None and age is not None and age <= STALE_S:
                found = reading.values.get(w.variable)
                if found is None:
                    found = reading.counters.get(w.variable)
                value = math.nan if found is None else float(found)
            w.value = value if math.isfinite(value) else None
            with self._lock:
                events = w.alarm.update(ticks, value)
            for event in events:
                self._record(w, event, None)
        if self._system_enabled and ticks >= self._system_due:
            self._system_due = ticks + SYSTEM_EVERY_S
            self._check_system(ticks)

    def close(self) -> None:
        """Stop checking, and close the history."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
        self._log.close()

    def _check_system(self, ticks: float) -> None:
        """Run the system's own checks through their alarms; a check that is no longer made
        (its load was removed) clears its alarm."""
        conditions = [self.clock_watch.check()]
        checked = True
        if self.system_checks is not None:
            try:
                conditions += self.system_checks()
            except Exception:  # a failing check must not stop the alarms on values
                log.exception("the system's checks failed")
                checked = False
        changes: list[tuple[_Watched, Event]] = []
        with self._lock:
            if not self._system_enabled:
                return
            names = {c.name for c in conditions}
            # Without an answer from the checks, their alarms stay as they were: neither
            # cleared nor raised again by a hiccup.
            dropped = [n for n in self._system if n not in names] if checked else []
            for name in dropped:
                gone = self._system.pop(name)
                if gone.alarm.state.active:
                    changes.append((gone, Event.CLEARED))
            saved = None
            for c in conditions:
                w = self._system.get(c.name)
                if w is None or w.alarm.rule != c.rule():
                    if saved is None:
                        saved = self._log.last_states()
                    alarm = _restored(Alarm(c.rule()), saved.get(c.name))
                    w = self._system[c.name] = _Watched(c.name, c.load, "", alarm)
                if c.active or not w.detail:
                    w.detail = c.detail  # what went wrong stays shown once it is over
                changes += [(w, e) for e in w.alarm.update(ticks, 1.0 if c.active else 0.0)]
        for w, event in changes:
            self._record(w, event, None)

    def _record(self, w: _Watched, event: Event, by: str | None) -> None:
        now = self._clock()
        if event is Event.RAISED:
            w.since_s = now
            what = w.detail if w.config is None else f"{w.load}.{w.variable} = {w.value}"
            log.warning("alarm raised: %s (%s)", w.name, what)
        else:
            log.info("alarm %s: %s%s", event.value, w.name, f" by {by}" if by else "")
        try:
            self._log.add(now, w.name, event.value, w.value, by)
        except Exception:  # the alarm itself must still work without its history
            log.exception("cannot record the alarm event")
        if self.on_alarm is not None:
            notice = AlarmNotice(
                now, w.name, event.value, w.load, w.variable, w.value, by, w.detail
            )
            try:
                self.on_alarm(notice)
            except Exception:
                log.exception("alarm notification failed")


def _restored(alarm: Alarm, saved: tuple[bool, bool] | None) -> Alarm:
    """``alarm`` in the state its history last left it (a latched alarm survives a restart)."""
    if saved is not None:
        alarm.state.active, alarm.state.acknowledged = saved
    return alarm


def _status(w: _Watched) -> AlarmStatus:
    """An alarm as the web app and the API show it."""
    active = w.alarm.state.active
    since = w.since_s if active else None
    c = w.config
    if c is None:
        return AlarmStatus(
            w.name,
            w.load,
            "",
            "system",
            None,
            None,
            active,
            w.alarm.state.acknowledged,
            w.alarm.rule.latching,
            None,
            since,
            system=True,
            detail=w.detail,
        )
    return AlarmStatus(
        w.name,
        w.load,
        w.variable,
        c.condition.value,
        c.low,
        c.high,
        active,
        w.alarm.state.acknowledged,
        c.latching,
        w.value,
        since,
    )
