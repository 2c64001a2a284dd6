"""The alarm state machine: thresholds with hysteresis, on and off delays, latching and
acknowledgement, checked case by case and against a model with random values and times."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsbox.control.alarms import Alarm, Condition, Event, Rule


def feed(alarm: Alarm, samples: list[tuple[float, float]]) -> list[tuple[float, Event]]:
    return [(t, e) for t, v in samples for e in alarm.update(t, v)]


def test_above_with_hysteresis_does_not_chatter_at_the_threshold():
    alarm = Alarm(Rule(Condition.ABOVE, high=100.0, hysteresis=5.0))
    events = feed(alarm, [(0, 99), (1, 101), (2, 99), (3, 101), (4, 96), (5, 94.9), (6, 100.5)])
    assert events == [(1, Event.RAISED), (5, Event.CLEARED), (6, Event.RAISED)]


def test_below_and_outside_a_band():
    below = Alarm(Rule(Condition.BELOW, low=207.0, hysteresis=2.0))
    assert feed(below, [(0, 230), (1, 206), (2, 208), (3, 209.5)]) == [
        (1, Event.RAISED),
        (3, Event.CLEARED),
    ]
    band = Alarm(Rule(Condition.OUTSIDE, low=49.5, high=50.5))
    assert feed(band, [(0, 50), (1, 50.6), (2, 50), (3, 49.4)]) == [
        (1, Event.RAISED),
        (2, Event.CLEARED),
        (3, Event.RAISED),
    ]


def test_the_on_delay_ignores_short_excursions_and_the_off_delay_short_returns():
    alarm = Alarm(Rule(Condition.ABOVE, high=10.0, on_delay_s=5.0, off_delay_s=3.0))
    samples = [(t, 11.0) for t in range(4)] + [(4, 9.0)]  # 4 s above: too short
    assert feed(alarm, samples) == []
    samples = [(t, 11.0) for t in range(10, 16)]  # 5 s above from t=10
    assert feed(alarm, samples) == [(15, Event.RAISED)]
    samples = [(16, 9.0), (17, 9.0), (18, 11.0), (19, 9.0), (21, 9.0), (22, 9.0)]
    assert feed(alarm, samples) == [(22, Event.CLEARED)]  # 3 s below from t=19


def test_a_latching_alarm_waits_for_acknowledgement():
    alarm = Alarm(Rule(Condition.ABOVE, high=10.0, latching=True))
    assert feed(alarm, [(0, 11.0), (1, 5.0), (2, 5.0)]) == [(0, Event.RAISED)]
    assert alarm.state.active and not alarm.state.acknowledged
    assert alarm.acknowledge() == [Event.ACKNOWLEDGED, Event.CLEARED]
    assert not alarm.state.active
    # Acknowledged while still breached: it clears when the condition goes.
    feed(alarm, [(3, 12.0)])
    assert alarm.acknowledge() == [Event.ACKNOWLEDGED]
    assert feed(alarm, [(4, 12.0), (5, 9.0)]) == [(5, Event.CLEARED)]


def test_acknowledging_a_non_latching_alarm_marks_it_seen_only():
    alarm = Alarm(Rule(Condition.ABOVE, high=10.0))
    feed(alarm, [(0, 11.0)])
    assert alarm.acknowledge() == [Event.ACKNOWLEDGED]
    assert alarm.state.active
    assert alarm.acknowledge() == []  # once
    assert feed(alarm, [(1, 9.0)]) == [(1, Event.CLEARED)]
    assert alarm.acknowledge() == []  # nothing to acknowledge


def test_a_missing_value_neither_raises_nor_clears_nor_runs_the_delays():
    alarm = Alarm(Rule(Condition.ABOVE, high=10.0, off_delay_s=2.0))
    assert feed(alarm, [(0, 11.0), (1, math.nan), (2, 9.0), (3, math.nan), (4, 9.0)]) == [
        (0, Event.RAISED),
        (4, Event.CLEARED),
    ]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"condition": Condition.ABOVE}, "needs a finite high"),
        ({"condition": Condition.BELOW, "low": math.inf}, "needs a finite low"),
        ({"condition": Condition.OUTSIDE, "low": 5.0, "high": 5.0}, "must be below"),
        ({"condition": Condition.ABOVE, "high": 1.0, "hysteresis": -1.0}, "zero or more"),
        ({"condition": Condition.ABOVE, "high": 1.0, "on_delay_s": math.nan}, "zero or more"),
    ],
)
def test_impossible_rules_are_refused(rule, message):
    with pytest.raises(ValueError, match=message):
        Rule(**rule)


@settings(max_examples=300, deadline=None)
@given(
    high=st.floats(-100, 100),
    hysteresis=st.floats(0, 20),
    on_delay=st.sampled_from([0.0, 1.0, 5.0]),
    off_delay=st.sampled_from([0.0, 1.0, 5.0]),
    latching=st.booleans(),
    steps=st.lists(
        st.tuples(st.floats(0.1, 3.0), st.floats(-150, 150), st.booleans()), max_size=80
    ),
)
def test_the_machine_agrees_with_a_model(high, hysteresis, on_delay, off_delay, latching, steps):
    rule = Rule(
        Condition.ABOVE,
        high=high,
        hysteresis=hysteresis,
        on_delay_s=on_delay,
        off_delay_s=off_delay,
        latching=latching,
    )
    alarm = Alarm(rule)
    t = 0.0
    active, acked, cond, since = False, True, False, None
    events_seen = []
    for gap, value, ack in steps:
        t += gap
        # The model, written from the rule's definition.
        breached = value > high - (hysteresis if active else 0.0)
        if breached != cond or since is None:
            cond, since = breached, t
        expected = []
        if not active and cond and t - since >= on_delay:
            active, acked = True, False
            expected.append(Event.RAISED)
        elif active and not cond and t - since >= off_delay and (not latching or acked):
            active = False
            expected.append(Event.CLEARED)
        got = alarm.update(t, value)
        assert got == expected
        events_seen += got
        if ack:
            expected = []
            if active and not acked:
                acked = True
                expected.append(Event.ACKNOWLEDGED)
                if latching and not cond:
                    active = False
                    expected.append(Event.CLEARED)
            assert alarm.acknowledge() == expected
            events_seen += expected
        assert alarm.state.active == active
    # Raised and cleared alternate, starting with raised.
    changes = [e for e in events_seen if e is not Event.ACKNOWLEDGED]
    assert all(e is (Event.RAISED if i % 2 == 0 else Event.CLEARED) for i, e in enumerate(changes))
