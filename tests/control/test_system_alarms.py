"""The built-in alarms for the system itself: the clock-jump detector, and the service's
checks run through the controller like the alarms on values (raised, cleared, latched,
acknowledged, recorded, notified, driving the output, turned off)."""

from __future__ import annotations

import time

import pytest
from test_alarm_controller import no_commands, until

from emsbox.bus import Bus
from emsbox.control import alarm_watch as watch_module
from emsbox.control.config import IoConfig
from emsbox.control.controller import Controller
from emsbox.control.system_alarms import CLOCK_JUMP, ClockWatch, SystemCondition

SOURCE = "System: no readings from main"


class FakeClocks:
    """A wall clock that can be set, and a monotonic one, both moved by hand."""

    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.mono = 100.0

    def advance(self, seconds: float, set_by: float = 0.0) -> None:
        self.mono += seconds
        self.wall += seconds + set_by


def test_the_clock_watch_notices_a_step_either_way_but_not_a_small_one():
    clocks = FakeClocks()
    watch = ClockWatch(5.0, wall=lambda: clocks.wall, monotonic=lambda: clocks.mono)
    assert not watch.check().active  # the first look has nothing to compare with
    clocks.advance(5.0, set_by=0.5)  # NTP slewing, or a small correction
    assert not watch.check().active
    clocks.advance(5.0, set_by=3600.0)
    jumped = watch.check()
    assert jumped.active and jumped.latching and jumped.name == CLOCK_JUMP
    assert "+3600 s" in jumped.detail
    clocks.advance(5.0)
    after = watch.check()
    assert not after.active and after.detail == jumped.detail  # what happened stays told
    clocks.advance(5.0, set_by=-86_400.0)
    assert "-86400 s" in watch.check().detail


@pytest.fixture
def fast(monkeypatch):
    """The system's checks every 50 ms instead of every few seconds."""
    monkeypatch.setattr(watch_module, "SYSTEM_EVERY_S", 0.05)


def status(c: Controller, name: str):
    (found,) = [a for a in c.alarms() if a.name == name]
    return found


def test_a_check_of_the_service_is_raised_cleared_recorded_and_notified(fast, tmp_path):
    conditions = [SystemCondition(SOURCE, False, "no recent reading", load="main")]
    notices = []
    c = Controller(Bus(), no_commands, tmp_path)
    c.alarm_watch.on_alarm = notices.append
    c.alarm_watch.system_checks = lambda: list(conditions)
    c.apply(IoConfig(), "main")
    try:
        until(lambda: any(a.name == SOURCE for a in c.alarms()))
        source = status(c, SOURCE)
        assert source.system and source.condition == "system" and not source.active
        assert status(c, CLOCK_JUMP).system  # always watched
        conditions[0] = SystemCondition(SOURCE, True, "connection refused", load="main")
        until(lambda: status(c, SOURCE).active)
        assert status(c, SOURCE).detail == "connection refused"
        assert not status(c, SOURCE).acknowledged and status(c, SOURCE).since_s is not None
        conditions[0] = SystemCondition(SOURCE, False, "no recent reading", load="main")
        until(lambda: not status(c, SOURCE).active)
        assert status(c, SOURCE).detail == "connection refused"  # what was wrong stays shown
        events = [(e.alarm, e.event) for e in reversed(c.alarm_history())]
        assert events == [(SOURCE, "raised"), (SOURCE, "cleared")]
        assert [(n.name, n.event, n.load, n.detail) for n in notices] == [
            (SOURCE, "raised", "main", "connection refused"),
            (SOURCE, "cleared", "main", "connection refused"),
        ]
    finally:
        c.close()


def test_a_clock_jump_stays_raised_until_acknowledged_even_across_a_restart(fast, tmp_path):
    clocks = FakeClocks()
    c = Controller(Bus(), no_commands, tmp_path)
    c.alarm_watch.clock_watch = ClockWatch(wall=lambda: clocks.wall, monotonic=lambda: clocks.mono)
    c.apply(IoConfig(), "main")
    try:
        until(lambda: any(a.name == CLOCK_JUMP for a in c.alarms()))
        clocks.advance(1.0, set_by=-7200.0)
        until(lambda: status(c, CLOCK_JUMP).active)
        clocks.advance(1.0)
        time.sleep(0.3)  # several checks without a jump: latched, it stays
        assert status(c, CLOCK_JUMP).active
    finally:
        c.close()
    again = Controller(Bus(), no_commands, tmp_path)
    again.apply(IoConfig(), "main")
    try:
        until(lambda: any(a.name == CLOCK_JUMP for a in again.alarms()))
        assert status(again, CLOCK_JUMP).active
        assert again.acknowledge(CLOCK_JUMP, "session:ann")
        assert not status(again, CLOCK_JUMP).active
        events = [(e.event, e.by) for e in again.alarm_history(alarm=CLOCK_JUMP)]
        assert events == [
            ("cleared", "session:ann"),
            ("acknowledged", "session:ann"),
            ("raised", None),
        ]
    finally:
        again.close()


def test_a_check_no_longer_made_or_the_built_in_alarms_turned_off_clear_theirs(fast, tmp_path):
    conditions = [SystemCondition(SOURCE, True, "timeout", load="main")]
    c = Controller(Bus(), no_commands, tmp_path)
    c.alarm_watch.system_checks = lambda: list(conditions)
    c.apply(IoConfig(), "main")
    try:
        until(lambda: any(a.name == SOURCE and a.active for a in c.alarms()))
        conditions.clear()  # the load was removed
        until(lambda: all(a.name != SOURCE for a in c.alarms()))
        assert [e.event for e in c.alarm_history(alarm=SOURCE)] == ["cleared", "raised"]
        conditions.append(SystemCondition(SOURCE, True, "timeout", load="main"))
        until(lambda: any(a.name == SOURCE and a.active for a in c.alarms()))
        c.apply(IoConfig(), "main", system_alarms=False)
        assert not any(a.system for a in c.alarms())
        assert next(e.event for e in c.alarm_history(alarm=SOURCE)) == "cleared"
        time.sleep(0.3)
        assert not any(a.system for a in c.alarms())  # and none come back while off
    finally:
        c.close()


def test_a_failing_check_leaves_the_other_alarms_working(fast, tmp_path, caplog):
    def broken() -> list[SystemCondition]:
        raise OSError("statvfs failed")

    c = Controller(Bus(), no_commands, tmp_path)
    c.alarm_watch.system_checks = broken
    c.apply(IoConfig(), "main")
    try:
        until(lambda: any(a.name == CLOCK_JUMP for a in c.alarms()))
        until(lambda: "the system's checks failed" in caplog.text)
    finally:
        c.close()


@pytest.mark.parametrize("system_output", [False, True])
def test_built_in_alarms_switch_the_alarm_output_only_when_asked(fast, tmp_path, system_output):
    c = Controller(Bus(), no_commands, tmp_path)
    c.alarm_watch.system_checks = lambda: [SystemCondition(SOURCE, True, "timeout", load="main")]
    c.apply(IoConfig(output_function="alarm"), "main", system_output=system_output)
    try:
        until(lambda: any(a.name == SOURCE and a.active for a in c.alarms()))
        if system_output:
            until(lambda: c.state().output_on)
        else:
            time.sleep(0.2)
            assert not c.state().output_on
    finally:
        c.close()


def test_checks_that_fail_leave_their_alarms_as_they_were(fast, tmp_path):
    failing = []

    def checks() -> list[SystemCondition]:
        if failing:
            raise OSError("statvfs failed")
        return [SystemCondition(SOURCE, True, "timeout", load="main")]

    notices = []
    c = Controller(Bus(), no_commands, tmp_path)
    c.alarm_watch.system_checks = checks
    c.alarm_watch.on_alarm = notices.append
    c.apply(IoConfig(), "main")
    try:
        until(lambda: any(a.name == SOURCE and a.active for a in c.alarms()))
        failing.append(True)
        time.sleep(0.3)  # several failed checks
        assert status(c, SOURCE).active
        assert [(n.name, n.event) for n in notices] == [(SOURCE, "raised")]
    finally:
        c.close()
