"""Alarms in the controller's loop: raised and cleared from the bus's readings, acknowledged,
kept in the history, a latched alarm surviving a restart, the alarm output, notices."""

from __future__ import annotations

import time
from concurrent.futures import Future

import pytest

from emsbox.bus import Bus, Reading
from emsbox.control.config import AlarmRuleConfig, IoConfig
from emsbox.control.controller import ControlError, Controller
from emsbox.samples import Wiring


def no_commands(load: str, action: str, tariff: int | None, by: str) -> Future[object]:
    done: Future[object] = Future()
    done.set_result({})
    return done


def reading(p: float, load: str = "main", at_s: float | None = None) -> Reading:
    values = {"p_sys": p}
    at_s = time.time() if at_s is None else at_s
    return Reading(load, Wiring.SINGLE_PHASE, at_s, 1.0, 5, values, values, values, {})


def until(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.02)


def rule(**more) -> AlarmRuleConfig:
    base = {"name": "Too much", "variable": "p_sys", "condition": "above", "high": 1000.0}
    return AlarmRuleConfig.model_validate(base | more)


def status(controller: Controller, name: str = "Too much"):
    (found,) = [a for a in controller.alarms() if a.name == name]
    return found


@pytest.fixture
def bus():
    return Bus()


def test_an_alarm_is_raised_cleared_and_recorded(bus, tmp_path):
    notices = []
    c = Controller(bus, no_commands, tmp_path)
    c.alarm_watch.on_alarm = notices.append
    bus.publish(reading(500.0))
    c.apply(IoConfig(), "main", alarms=(rule(hysteresis=50.0),))
    try:
        time.sleep(1.2)
        assert not status(c).active and status(c).value == 500.0
        bus.publish(reading(1500.0))
        until(lambda: status(c).active)
        assert not status(c).acknowledged and status(c).since_s is not None
        bus.publish(reading(980.0))  # within the hysteresis: still raised
        time.sleep(1.2)
        assert status(c).active
        bus.publish(reading(900.0))
        until(lambda: not status(c).active)
        events = [(e.alarm, e.event, e.value) for e in reversed(c.alarm_history())]
        assert events == [("Too much", "raised", 1500.0), ("Too much", "cleared", 900.0)]
        assert [(n.name, n.event, n.load, n.variable) for n in notices] == [
            ("Too much", "raised", "main", "p_sys"),
            ("Too much", "cleared", "main", "p_sys"),
        ]
    finally:
        c.close()


def test_a_latched_alarm_waits_for_a_user_and_survives_a_restart(bus, tmp_path):
    c = Controller(bus, no_commands, tmp_path)
    bus.publish(reading(2000.0))
    c.apply(IoConfig(), "main", alarms=(rule(latching=True),))
    until(lambda: status(c).active)
    bus.publish(reading(10.0))
    time.sleep(1.2)
    assert status(c).active  # latched
    c.close()
    again = Controller(bus, no_commands, tmp_path)
    again.apply(IoConfig(), "main", alarms=(rule(latching=True),))
    try:
        time.sleep(1.2)
        assert status(again).active and not status(again).acknowledged
        with pytest.raises(ControlError, match="no alarm named"):
            again.acknowledge("Nothing", "ada")
        assert again.acknowledge("Too much", "ada") is True
        assert not status(again).active
        assert again.acknowledge("Too much", "ada") is False
        history = again.alarm_history()
        assert [(e.event, e.by) for e in history[:2]] == [
            ("cleared", "ada"),
            ("acknowledged", "ada"),
        ]
    finally:
        again.close()


def test_stale_or_missing_values_neither_raise_nor_clear(bus, tmp_path, monkeypatch):
    from emsbox.control import alarm_watch

    monkeypatch.setattr(alarm_watch, "STALE_S", 1.5)  # the checks come once a second
    c = Controller(bus, no_commands, tmp_path)
    # A reading whose time stamp is a day off (the clock was set after the measuring began)
    # but that came just now is fresh; the same one no longer coming is stale.
    odd_clock = Reading(
        "main", Wiring.SINGLE_PHASE, time.time() - 86400, 1.0, 5, {"p_sys": 900.0}, {}, {}, {}
    )
    c.apply(IoConfig(), "main", alarms=(rule(), rule(name="Other load", load="hvac")))
    try:
        bus.publish(odd_clock)
        until(lambda: status(c).value == 900.0)
        until(lambda: status(c).value is None)  # nothing came for 1.5 s
        bus.publish(reading(5000.0))
        until(lambda: status(c).active)
        until(lambda: status(c).value is None)
        time.sleep(1.1)
        assert status(c).active  # a value that stopped coming does not clear it either
        assert status(c, "Other load").value is None
    finally:
        c.close()


def test_the_alarm_output_follows_the_alarms_that_ask_for_it(bus, tmp_path):
    c = Controller(bus, no_commands, tmp_path)
    bus.publish(reading(500.0))
    rules = (rule(output=True), rule(name="Quiet", high=100.0, output=False))
    c.apply(IoConfig(output_function="alarm", output_normally_closed=True), "main", alarms=rules)
    try:
        time.sleep(1.2)
        assert status(c, "Quiet").active  # 500 > 100, but it does not drive the output
        assert not c.state().output_on and c.state().output_closed  # NC: closed at rest
        bus.publish(reading(1500.0))
        until(lambda: c.state().output_on)
        assert not c.state().output_closed
    finally:
        c.close()


def test_alarm_rules_are_checked():
    from emsbox.config import ConfigError, validate

    cases = [
        ({"high": None}, "needs a finite high"),
        ({"condition": "outside", "low": 5, "high": 1}, "must be below"),
        ({"variable": "tariff"}, "not a measured or counted variable"),
        ({"name": "bad/name"}, "letters, digits"),
    ]
    for change, message in cases:
        base = {"name": "A", "variable": "p_sys", "condition": "above", "high": 1.0}
        with pytest.raises(ConfigError) as refused:
            validate({"alarms": {"rules": [base | change]}})
        assert any(message in p for p in refused.value.problems), refused.value.problems
    with pytest.raises(ConfigError) as refused:
        validate(
            {
                "alarms": {
                    "rules": [
                        {
                            "name": "A",
                            "load": "x",
                            "variable": "p_sys",
                            "condition": "above",
                            "high": 1.0,
                        }
                    ]
                }
            }
        )
    assert refused.value.problems == ["alarms.rules[0].load: no load named 'x'; loads: main"]
    doubled = {"name": "A", "variable": "p_sys", "condition": "above", "high": 1.0}
    with pytest.raises(ConfigError, match="unique"):
        validate({"alarms": {"rules": [doubled, doubled]}})


def test_the_history_keeps_a_latched_alarm_however_busy_the_others_are(tmp_path, monkeypatch):
    from emsbox.control import alarm_log
    from emsbox.control.alarm_log import AlarmLog

    monkeypatch.setattr(alarm_log, "KEEP_EVENTS", 50)
    history = AlarmLog(tmp_path / "alarms.sqlite3")
    try:
        history.add(1.0, "Latched", "raised", 5.0, None)
        history.add(2.0, "Seen", "raised", 5.0, None)
        history.add(3.0, "Seen", "acknowledged", None, "session:ann")
        for i in range(500):  # a flapping alarm fills the history
            history.add(10.0 + i, "Flapping", "raised" if i % 2 == 0 else "cleared", 1.0, None)
        assert len(history.events(1000)) < 200  # trimmed
        states = history.last_states()
        assert states["Latched"] == (True, False)  # still raised, still to acknowledge
        assert states["Seen"] == (True, True)  # raised and acknowledged
        assert states["Flapping"] == (False, False)
    finally:
        history.close()


def test_the_delays_run_on_elapsed_time_not_on_the_wall_clock(bus, tmp_path):
    from emsbox.control.alarm_watch import AlarmWatch

    wall, ticks = [time.time()], [1000.0]
    watch = AlarmWatch(bus, tmp_path, clock=lambda: wall[0], ticks=lambda: ticks[0])
    watch.configure((rule(on_delay_s=10.0),), "main", system=False)
    try:
        bus.publish(reading(1500.0, at_s=wall[0]))
        watch.check()
        # NTP sets the clock a day forward: the alarm must still wait its 10 s.
        wall[0] += 86400.0
        bus.publish(reading(1500.0, at_s=wall[0]))
        ticks[0] += 1.0
        watch.check()
        assert not watch.alarms()[0].active and watch.alarms()[0].value == 1500.0
        # ... and a day back: it must not wait a day.
        wall[0] -= 2 * 86400.0
        bus.publish(reading(1500.0, at_s=wall[0]))
        ticks[0] += 9.5
        watch.check()
        assert watch.alarms()[0].active
        assert watch.alarms()[0].since_s == pytest.approx(wall[0])
    finally:
        watch.close()
