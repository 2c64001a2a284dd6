"""The digital input: debouncing, and the commands of every function on each change."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsbox.control.inputs import (
    Debouncer,
    DigitalInput,
    InputCommand,
    InputFunction,
    commands_for,
)


def test_bounces_shorter_than_the_debounce_time_are_ignored():
    d = Debouncer(0.05)
    # A contact closing with bounces: closed, open, closed, open, then closed for good.
    for t, raw in [(0.000, True), (0.004, False), (0.009, True), (0.013, False), (0.020, True)]:
        assert d.feed(t, raw) is None
    assert d.feed(0.069, True) is None  # 49 ms steady: not yet
    assert d.feed(0.070, True) is True  # 50 ms steady: now
    assert d.feed(0.200, True) is None and d.level is True
    assert d.feed(0.300, False) is None
    assert d.feed(0.320, True) is None  # a 20 ms drop-out: ignored
    assert d.feed(0.500, True) is None and d.level is True


def test_without_debouncing_every_change_counts():
    d = Debouncer(0.0)
    assert d.feed(1.0, True) is True
    assert d.feed(1.001, False) is False


def test_a_negative_debounce_time_is_refused():
    with pytest.raises(ValueError, match="zero or more"):
        Debouncer(-0.01)


@pytest.mark.parametrize(
    ("function", "active", "commands"),
    [
        (InputFunction.STATUS, True, []),
        (InputFunction.STATUS, False, []),
        (InputFunction.TARIFF, True, [InputCommand("tariff", 2)]),
        (InputFunction.TARIFF, False, [InputCommand("tariff", 1)]),
        (InputFunction.PARTIAL_RUN, True, [InputCommand("start")]),
        (InputFunction.PARTIAL_RUN, False, [InputCommand("stop")]),
        (InputFunction.PARTIAL_RESET, True, [InputCommand("reset")]),
        (InputFunction.PARTIAL_RESET, False, []),
    ],
)
def test_each_function_asks_for_its_commands(function, active, commands):
    assert commands_for(function, active) == commands


def test_a_reset_input_resets_once_per_closing_however_long_it_stays_closed():
    reset = DigitalInput(InputFunction.PARTIAL_RESET, debounce_s=0.05)
    assert reset.feed(0.0, True) is None
    assert reset.feed(0.05, True) == [InputCommand("reset")]
    assert all(reset.feed(0.05 + k, True) is None for k in range(1, 100))
    assert reset.feed(200.0, False) is None
    assert reset.feed(200.1, False) == []  # opening does nothing
    assert reset.feed(300.0, True) is None
    assert reset.feed(300.06, True) == [InputCommand("reset")]


def test_an_inverted_input_takes_a_closed_contact_as_inactive():
    tariff = DigitalInput(InputFunction.TARIFF, debounce_s=0.0, inverted=True)
    assert tariff.feed(0.0, False) == [InputCommand("tariff", 2)]  # open: active
    assert tariff.active is True
    assert tariff.feed(1.0, True) == [InputCommand("tariff", 1)]


@settings(max_examples=200, deadline=None)
@given(
    debounce=st.sampled_from([0.0, 0.01, 0.05, 0.2]),
    changes=st.lists(
        st.tuples(st.floats(0.0005, 0.5, allow_nan=False), st.booleans()), max_size=60
    ),
)
def test_the_debounced_level_changes_only_after_the_raw_level_held(debounce, changes):
    d = Debouncer(debounce)
    t, raw, raw_since = 0.0, False, 0.0
    for gap, new_raw in changes:
        # Samples every millisecond between raw changes.
        end = t + gap
        while t < end:
            t = min(end, t + 0.001)
            changed = d.feed(t, raw)
            if changed is not None:
                assert changed == raw and t - raw_since >= debounce - 1e-12
        if new_raw != raw:
            raw, raw_since = new_raw, t
            changed = d.feed(t, raw)
            if changed is not None:
                assert debounce == 0.0 and changed == raw
    # Held long enough, the level always follows.
    d.feed(t + debounce + 1e-9, raw)
    assert d.level == raw
