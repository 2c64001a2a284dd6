import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsbox.metering.window import cycles_per_window, plan_windows, smooth_step


def test_cycles_per_window_follows_iec_61000_4_30():
    assert cycles_per_window(50.0) == 10
    assert cycles_per_window(60.0) == 12


def test_smooth_step_is_a_monotonic_step_from_0_to_1():
    x = np.linspace(-0.5, 1.5, 2001)
    y = smooth_step(x)
    assert y[0] == 0.0 and y[-1] == 1.0
    assert np.all(np.diff(y) >= 0.0)
    assert smooth_step(np.array([0.5]))[0] == pytest.approx(0.5)


@settings(max_examples=60, deadline=None)
@given(
    freq=st.floats(45.0, 65.0),
    rate=st.sampled_from([4000.0, 6400.0, 7812.5, 12800.0]),
    start=st.floats(0.0, 1000.0),
)
def test_weights_of_consecutive_windows_add_up_to_one_at_every_sample(freq, rate, start):
    window = 10 * rate / freq
    half = rate / (2 * freq)
    first = start + half
    plan = plan_windows(first, window, half, int(first + 6 * window) + 10)
    assert plan.n_windows >= 5
    total = np.zeros(int(plan.first[-1]) + plan.length + 1)
    for j, w in enumerate(plan.weights()):
        total[plan.first[j] : plan.first[j] + plan.length] += w
    # Between the middle of the first window and the middle of the last, every sample is
    # covered exactly once in total.
    lo = int(plan.bounds[0] + half) + 1
    hi = int(plan.bounds[-1] - half) - 1
    assert np.allclose(total[lo:hi], 1.0, atol=1e-12)
    # Each window's weights add up to its length in samples (to the alias level).
    sums = plan.weights().sum(axis=1)
    assert np.allclose(sums, np.diff(plan.bounds), rtol=1e-8)


def test_plan_is_gapless_and_needs_only_available_samples():
    plan = plan_windows(64.0, 1267.3, 64.0, 6400)
    assert np.allclose(np.diff(plan.bounds), 1267.3)
    assert plan.first[-1] + plan.length <= 6400
    assert plan_windows(64.0, 1267.3, 64.0, 1000).n_windows == 0


@pytest.mark.parametrize("start", [0.0, 5e7 + 0.123, 3.3e9 + 0.7])
def test_windows_laid_with_one_length_keep_exactly_that_length_far_into_a_run(start):
    # One length means one DFT basis for the whole pass: window lengths must not pick up the
    # rounding of bounds that are large numbers (a day at 6.4 kS/s is 5.5e8 samples).
    length = 6400.0 * 10 / 49.987654
    plan = plan_windows(start, np.array([length]), 64.0, int(start) + 20_000, max_windows=5)
    assert plan.n_windows == 5
    assert set(plan.window_samples.tolist()) == {length}
    assert np.allclose(np.diff(plan.bounds), length, rtol=0, atol=1e-5)
