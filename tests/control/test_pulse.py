"""The pulse output against integrated energy: long runs on a fake clock, overload, restarts,
counter resets; every pulse at least its width long and every gap at least its gap."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsbox.control.pulse import PulseOutput


def run(
    output: PulseOutput,
    power_kw,
    seconds: float,
    step_s: float = 0.02,
    t0: float = 0.0,
    e0: float = 0.0,
):
    """Step ``output`` on a fake clock with energy integrated from ``power_kw(t)``; returns
    (pulses seen as rising edges, shortest on time, shortest off time between pulses, final
    time, final energy)."""
    t, energy, level = t0, e0, output.pulsing  # a run may continue in the middle of a pulse
    rising = 0
    on_since, off_since = (t0 if level else None), None
    shortest_on = shortest_off = math.inf
    first = True  # the first step gives the counter at the start
    while t < t0 + seconds:
        if not first:
            energy += power_kw(t) * step_s / 3600.0
            t += step_s
        first = False
        new = output.step(t, energy) != output.normally_closed
        if new and not level:
            rising += 1
            if off_since is not None:
                shortest_off = min(shortest_off, t - off_since)
            on_since = t
        elif level and not new:
            shortest_on = min(shortest_on, t - on_since)
            off_since = t
        level = new
    return rising, shortest_on, shortest_off, t, energy


def building(t: float) -> float:
    """A load between 0 and 25 kW that changes every minute, with quiet spells."""
    minute = int(t // 60)
    rng = random.Random(minute)
    return 0.0 if minute % 7 == 3 else rng.uniform(0.0, 25.0)


def test_a_long_run_gives_exactly_the_energy_times_the_constant():
    output = PulseOutput(pulses_per_kwh=1000, width_s=0.1)
    pulses, shortest_on, shortest_off, t, energy = run(output, building, seconds=3 * 3600)
    # Peaks above max_power_kw (18 kW) leave pulses waiting; let them all come out.
    assert output.max_power_kw == pytest.approx(18.0)
    more, *_ = run(output, lambda _t: 0.0, seconds=600, t0=t, e0=energy)
    assert pulses + more == output.emitted == output.owed == math.floor(energy * 1000)
    assert output.waiting == 0
    assert shortest_on >= 0.1 - 1e-9 and shortest_off >= 0.1 - 1e-9


def test_above_the_highest_rate_pulses_wait_and_are_never_lost():
    output = PulseOutput(pulses_per_kwh=1000, width_s=0.1)
    pulses, *_rest, t, energy = run(output, lambda _t: 36.0, seconds=60)  # twice the maximum
    owed = math.floor(energy * 1000)
    assert output.owed == owed and owed in (599, 600)  # 0.6 kWh, summed in float steps
    assert pulses == output.emitted <= 301 and output.waiting >= owed - 301
    more, *_ = run(output, lambda _t: 0.0, seconds=120, t0=t, e0=energy)
    assert pulses + more == owed


def test_normally_closed_inverts_the_contact():
    output = PulseOutput(pulses_per_kwh=1, width_s=1.0, normally_closed=True)
    assert output.step(0.0, 10.0) is True  # at rest: closed
    assert output.step(1.0, 11.0) is False  # one pulse: open
    assert output.step(2.5, 11.0) is True


def test_a_restart_continues_the_count_from_the_saved_state():
    whole = PulseOutput(pulses_per_kwh=500, width_s=0.05)
    n_whole, *_rest, t_end, e_end = run(whole, building, seconds=1800)
    first = PulseOutput(pulses_per_kwh=500, width_s=0.05)
    n1, *_rest, t, energy = run(first, building, seconds=900)
    second = PulseOutput(pulses_per_kwh=500, width_s=0.05, state=first.state())
    n2, *_ = run(second, building, seconds=900, t0=t, e0=energy)
    # Energy of the two halves equals the whole run's (same profile, same steps).
    assert energy < e_end
    tail_whole, *_ = run(whole, lambda _t: 0.0, seconds=300, t0=t_end, e0=e_end)
    tail_second, *_ = run(second, lambda _t: 0.0, seconds=300, t0=t_end, e0=e_end)
    assert n1 + n2 + tail_second == n_whole + tail_whole == math.floor(e_end * 500)


def test_a_counter_that_goes_down_starts_again_without_adding_pulses():
    output = PulseOutput(pulses_per_kwh=10, width_s=0.1)
    output.step(0.0, 100.0)
    output.step(1.0, 100.55)  # 5.5 pulses: 5 owed
    assert output.owed == 5
    output.step(2.0, 3.0)  # replaced meter, or a reset partial counter
    assert output.owed == 5
    output.step(3.0, 3.2)
    assert output.owed == 7


def test_missing_values_owe_nothing():
    output = PulseOutput(pulses_per_kwh=10, width_s=0.1)
    output.step(0.0, 1.0)
    output.step(0.5, math.nan)
    output.step(1.0, 1.3)
    assert output.owed == 3


@pytest.mark.parametrize(
    "arguments",
    [
        {"pulses_per_kwh": 0, "width_s": 0.1},
        {"pulses_per_kwh": -1, "width_s": 0.1},
        {"pulses_per_kwh": math.inf, "width_s": 0.1},
        {"pulses_per_kwh": 10, "width_s": 0},
        {"pulses_per_kwh": 10, "width_s": 0.1, "gap_s": -1},
    ],
)
def test_impossible_settings_are_refused(arguments):
    with pytest.raises(ValueError, match="must be a positive number"):
        PulseOutput(**arguments)


@settings(max_examples=200, deadline=None)
@given(
    constant=st.sampled_from([1, 10, 100, 800, 1000, 10000]),
    increments=st.lists(st.floats(0.0, 0.05, allow_nan=False), min_size=1, max_size=300),
    start=st.floats(0.0, 1e6, allow_nan=False),
)
def test_what_is_owed_is_always_the_counter_times_the_constant(constant, increments, start):
    output = PulseOutput(pulses_per_kwh=constant, width_s=0.01)
    energy, t = start, 0.0
    output.step(t, energy)
    for inc in increments:
        energy += inc
        t += 0.1
        output.step(t, energy)
        assert output.owed == math.floor((energy - start) * constant)
        assert 0 <= output.emitted <= output.owed
