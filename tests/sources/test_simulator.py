"""The simulator: channels, reproducibility, phase continuity and the physics of its signals."""

import math
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from emsbox.samples import OPTIONAL_SIGNALS, REQUIRED_SIGNALS, ChannelId, LoadInfo, Wiring
from emsbox.sources.base import SampleSource
from emsbox.sources.simulator import (
    MAX_EXTENSION_LOADS,
    CtType,
    SimulatedLoad,
    Simulator,
    SimulatorConfig,
    default_config,
    demo_building_config,
)

RATE = 6400.0
# Wednesday 12 June 2024, 00:00 UTC.
MIDNIGHT = datetime(2024, 6, 12, tzinfo=UTC).timestamp()


def clean(**changes) -> SimulatedLoad:
    """A load without distortion, noise or wander unless asked: signals with known answers."""
    quiet = {
        "voltage_harmonics_pct": {},
        "current_harmonics_pct": {},
        "noise_pct": 0.0,
        "voltage_variation_pct": 0.0,
        "voltage_unbalance_pct": 0.0,
    }
    return SimulatedLoad(**{**quiet, **changes})


def site(*loads: SimulatedLoad, **changes) -> SimulatorConfig:
    return SimulatorConfig(loads=list(loads), start_s=MIDNIGHT, **changes)


def signals(source: Simulator, n: int, load: str | None = None) -> dict[str, np.ndarray]:
    """``n`` samples of every signal of ``load`` (the first load if None)."""
    block = source.read(n)
    load = load or source.loads[0].name
    return {c.signal: block.samples[k] for k, c in enumerate(block.channels) if c.load == load}


def upward_crossings(x: np.ndarray) -> np.ndarray:
    """Fractional sample positions where ``x`` crosses zero going up (linear interpolation)."""
    k = np.flatnonzero((x[:-1] < 0.0) & (x[1:] >= 0.0))
    return k + x[k] / (x[k] - x[k + 1])


def whole_cycles(x: np.ndarray) -> np.ndarray:
    """``x`` cut to the whole cycles between its first and last upward zero crossing."""
    k = upward_crossings(x)
    return x[round(k[0]) : round(k[-1])]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def phasor(x: np.ndarray, cycles: int) -> complex:
    """The DFT bin of ``cycles`` periods in ``x`` (x must hold whole cycles of the fundamental)."""
    return complex(np.fft.rfft(x)[cycles]) * 2.0 / x.size


# --------------------------------------------------------------------------------------------
# Interface and configuration


@pytest.mark.parametrize("wiring", list(Wiring))
def test_channels_are_the_wirings_required_then_optional_signals(wiring):
    source = Simulator(site(SimulatedLoad(name="x", wiring=wiring, nominal_voltage_v=120.0)))
    expected = (*REQUIRED_SIGNALS[wiring], *OPTIONAL_SIGNALS[wiring])
    assert source.channels == tuple(ChannelId("x", s) for s in expected)
    assert source.loads == (LoadInfo("x", wiring, 50.0),)
    block = source.read(100)
    assert block.samples.shape == (len(expected), 100)
    assert block.samples.dtype == np.float64
    assert np.all(np.isfinite(block.samples))


def test_the_simulator_is_a_sample_source_that_never_runs_out():
    source: SampleSource = Simulator(site(SimulatedLoad(), sample_rate_hz=4000.0))
    assert source.sample_rate_hz == 4000.0
    for _ in range(3):
        block = source.read(30000)
        assert block is not None and block.n_samples == 30000
    source.close()


def test_blocks_are_gapless_and_time_advances():
    source = Simulator(site(SimulatedLoad()))
    assert source.start_s == MIDNIGHT
    first = source.read(1000)
    second = source.read(333)
    assert first.start_s == MIDNIGHT
    assert second.start_s == pytest.approx(first.end_s, abs=1e-9)
    assert source.time_s == pytest.approx(second.end_s, abs=1e-9)
    with pytest.raises(ValueError, match="at least 1"):
        source.read(0)


def test_start_defaults_to_now_rounded_down_to_the_second():
    before = math.floor(time.time())
    source = Simulator(SimulatorConfig())
    assert before <= source.start_s <= time.time()
    assert source.start_s == int(source.start_s)


def test_default_config_is_one_three_phase_main_load_at_230_v_50_hz():
    cfg = default_config()
    [main] = cfg.loads
    assert (main.name, main.wiring, main.nominal_voltage_v) == ("main", Wiring.THREE_PHASE_4W, 230)
    assert main.nominal_frequency_hz == 50.0
    assert main.ct_type is CtType.DIRECT and main.ct_primary_a == 65.0
    assert cfg.sample_rate_hz == 6400.0 and cfg.seed == 1
    assert Simulator(cfg).loads == (LoadInfo("main", Wiring.THREE_PHASE_4W, 50.0),)


@pytest.mark.parametrize("n", [0, 1, 4, MAX_EXTENSION_LOADS])
def test_demo_building_has_a_main_load_and_ct_measured_extensions(n):
    cfg = demo_building_config(n)
    assert len(cfg.loads) == n + 1
    assert cfg.loads[0].name == "main"
    assert all(load.ct_type is not CtType.DIRECT for load in cfg.loads[1:])
    assert len({load.name for load in cfg.loads}) == n + 1


def test_demo_building_refuses_more_than_ten_extensions():
    with pytest.raises(ValueError, match="0–10"):
        demo_building_config(MAX_EXTENSION_LOADS + 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"loads": [SimulatedLoad(name="a"), SimulatedLoad(name="a")]}, "unique"),
        (
            {"loads": [SimulatedLoad(nominal_frequency_hz=64.9)], "frequency_drift_hz": 0.2},
            "45–65 Hz",
        ),
        (
            {"loads": [SimulatedLoad(current_harmonics_pct={50: 1.0})], "sample_rate_hz": 4000},
            "half the sample rate",
        ),
        ({"loads": []}, "at least 1"),
    ],
)
def test_site_configuration_is_validated(changes, message):
    with pytest.raises(ValidationError, match=message):
        SimulatorConfig(**changes)


@pytest.mark.parametrize(
    "changes",
    [
        {"nominal_voltage_v": 90.0},
        {"nominal_voltage_v": 600.0},
        {"nominal_frequency_hz": 70.0},
        {"base_load_w": 5000.0, "peak_load_w": 1000.0},
        {"pv_sunrise_h": 18.0, "pv_sunset_h": 6.0},
        {"voltage_harmonics_pct": {1: 5.0}},
        {"name": "bad name"},
        {"power_fator": 0.9},
    ],
)
def test_load_configuration_is_validated(changes):
    with pytest.raises(ValidationError):
        SimulatedLoad(**changes)


# --------------------------------------------------------------------------------------------
# Reproducibility


def two_grid_site(seed: int = 7) -> SimulatorConfig:
    """Two grids, with the 50 Hz loads not next to each other in channel order."""
    return site(
        SimulatedLoad(name="main"),
        SimulatedLoad(
            name="us",
            wiring=Wiring.SPLIT_PHASE,
            nominal_voltage_v=120.0,
            nominal_frequency_hz=60.0,
            ct_type=CtType.A5,
            ct_primary_a=200.0,
        ),
        SimulatedLoad(name="motor", wiring=Wiring.THREE_PHASE_3W, ct_type=CtType.MV333),
        seed=seed,
    )


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 9000), min_size=1, max_size=8))
def test_samples_do_not_depend_on_the_block_sizes(sizes):
    total = sum(sizes)
    whole = Simulator(two_grid_site()).read(total).samples
    source = Simulator(two_grid_site())
    pieces = np.concatenate([source.read(n).samples for n in sizes], axis=1)
    np.testing.assert_array_equal(pieces, whole)


def test_one_read_equals_two_halves_across_frames():
    n = 3 * 12800 + 17 * 2
    whole = Simulator(two_grid_site()).read(n).samples
    source = Simulator(two_grid_site())
    halves = np.concatenate([source.read(n // 2).samples, source.read(n // 2).samples], axis=1)
    np.testing.assert_array_equal(halves, whole)


def test_blocks_already_read_do_not_change():
    source = Simulator(two_grid_site())
    first = source.read(1000)
    kept = first.samples.copy()
    for _ in range(20):
        source.read(5000)
    np.testing.assert_array_equal(first.samples, kept)


def test_the_same_seed_gives_bit_identical_samples_and_another_seed_differs():
    a = Simulator(two_grid_site(seed=3)).read(20000).samples
    b = Simulator(two_grid_site(seed=3)).read(20000).samples
    c = Simulator(two_grid_site(seed=4)).read(20000).samples
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1.0


@pytest.mark.parametrize("n", [0, MAX_EXTENSION_LOADS])
def test_demo_currents_stay_within_their_ct_ratings(n):
    cfg = demo_building_config(n)
    for hour in (3.0, 8.5, 12.0, 19.5):
        source = Simulator(cfg.model_copy(update={"start_s": MIDNIGHT + hour * 3600}))
        block = source.read(1280)
        for k, channel in enumerate(block.channels):
            if channel.signal.startswith("i"):
                load = next(x for x in cfg.loads if x.name == channel.load)
                assert rms(block.samples[k]) < load.ct_primary_a


def test_adding_a_load_leaves_the_profile_of_the_others_alone():
    alone = Simulator(site(clean(name="main"))).read(6400).samples
    with_other = Simulator(site(clean(name="main"), clean(name="other"))).read(6400).samples
    np.testing.assert_array_equal(with_other[:7], alone)


# --------------------------------------------------------------------------------------------
# Frequency and phase


def test_frequency_wanders_smoothly_within_the_drift_bound():
    cfg = site(
        clean(wiring=Wiring.SINGLE_PHASE),
        frequency_drift_hz=0.05,
        frequency_drift_timescale_s=8.0,
    )
    v = signals(Simulator(cfg), int(40 * RATE))["v_l1"]
    crossings = upward_crossings(v)
    f = RATE / np.diff(crossings)
    assert np.all(np.abs(f - 50.0) <= 0.05 + 1e-4)
    assert f.max() - f.min() > 0.01  # it does wander
    assert np.abs(np.diff(f)).max() < 1e-3  # and never jumps


def test_loads_of_one_grid_share_its_phase_and_a_60_hz_load_has_its_own():
    cfg = site(
        clean(name="a", wiring=Wiring.SINGLE_PHASE),
        clean(name="b", wiring=Wiring.THREE_PHASE_4W, nominal_voltage_v=240.0),
        clean(
            name="c", wiring=Wiring.SINGLE_PHASE, nominal_voltage_v=120.0, nominal_frequency_hz=60.0
        ),
    )
    source = Simulator(cfg)
    block = source.read(int(5 * RATE))
    rows = {(c.load, c.signal): block.samples[k] for k, c in enumerate(block.channels)}
    a, b, c = rows["a", "v_l1"], rows["b", "v_l1"], rows["c", "v_l1"]
    np.testing.assert_allclose(a / 230.0, b / 240.0, atol=1e-9)
    assert RATE / np.diff(upward_crossings(c)).mean() == pytest.approx(60.0, abs=0.06)
    assert RATE / np.diff(upward_crossings(a)).mean() == pytest.approx(50.0, abs=0.06)


def test_phase_is_continuous_across_frame_and_block_boundaries():
    # A pure sine obeys v[n+1] + v[n-1] = 2 cos(ω) v[n]; a phase jump of δ rad would leave a
    # residual of about 325 V · δ at the jump. Drift (≤ 0.05 Hz) leaves ~0.002 V.
    cfg = site(
        clean(wiring=Wiring.SINGLE_PHASE), frequency_drift_hz=0.05, frequency_drift_timescale_s=5.0
    )
    source = Simulator(cfg)
    v = np.concatenate([source.read(n).samples[0] for n in (5000, 12800, 7, 30000, 12800)])
    w = 2 * np.pi * 50.0 / RATE
    residual = v[2:] + v[:-2] - 2 * np.cos(w) * v[1:-1]
    assert np.abs(residual).max() < 0.01


# --------------------------------------------------------------------------------------------
# Voltages


@pytest.mark.parametrize("wiring", [Wiring.SINGLE_PHASE, Wiring.SPLIT_PHASE, Wiring.THREE_PHASE_4W])
def test_voltage_rms_stays_within_nominal_and_its_variation(wiring):
    load = SimulatedLoad(wiring=wiring, voltage_variation_pct=3.0, voltage_unbalance_pct=0.5)
    cfg = site(load, frequency_drift_timescale_s=10.0)
    source = Simulator(cfg)
    values = []
    for _ in range(60):
        for name, x in signals(source, int(RATE)).items():
            if name.startswith("v"):
                values.append(rms(whole_cycles(x)))
    distortion = math.sqrt(1 + sum((p / 100) ** 2 for p in load.voltage_harmonics_pct.values()))
    bound = 230.0 * (1 + (3.0 + 0.5) / 100) * distortion
    assert min(values) >= 230.0 * (1 - 3.5 / 100)
    assert max(values) <= bound
    assert max(values) - min(values) > 0.5  # the level does vary


def test_wild_leg_is_a_240_v_delta_with_a_208_v_high_leg():
    cfg = site(
        clean(wiring=Wiring.WILD_LEG, nominal_voltage_v=120.0, nominal_frequency_hz=60.0),
        frequency_drift_hz=0.0,
    )
    v = signals(Simulator(cfg), 6400)  # 60 whole cycles at 60 Hz
    assert rms(v["v_l1"]) == pytest.approx(120.0, rel=1e-6)
    assert rms(v["v_l2"]) == pytest.approx(120.0, rel=1e-6)
    assert rms(v["v_l3"]) == pytest.approx(120.0 * math.sqrt(3), rel=1e-6)  # 207.8 V
    for a, b in [("v_l1", "v_l2"), ("v_l2", "v_l3"), ("v_l3", "v_l1")]:
        assert rms(v[a] - v[b]) == pytest.approx(240.0, rel=1e-6)


def test_three_wire_line_voltages_are_root_3_times_nominal_and_currents_sum_to_zero():
    cfg = site(
        clean(
            wiring=Wiring.THREE_PHASE_3W,
            current_harmonics_pct={3: 10.0, 5: 5.0},
            unbalance_pct=0.0,
            appliance_share_pct=0.0,
        ),
        frequency_drift_hz=0.0,
    )
    s = signals(Simulator(cfg), 6400)
    line = 230.0 * math.sqrt(3)
    assert rms(s["v_l12"]) == pytest.approx(line, rel=1e-6)
    assert rms(s["v_l23"]) == pytest.approx(line, rel=1e-6)
    assert rms(s["v_l12"] + s["v_l23"]) == pytest.approx(line, rel=1e-6)  # v_l31
    np.testing.assert_allclose(s["i_l1"] + s["i_l2"] + s["i_l3"], 0.0, atol=1e-9)
    # Without a neutral, the triplen harmonics cannot flow.
    i1 = np.abs(np.fft.rfft(s["i_l1"]))
    assert i1[150] < 1e-6 * i1[50]


def test_split_phase_legs_are_180_degrees_apart():
    cfg = site(
        SimulatedLoad(wiring=Wiring.SPLIT_PHASE, nominal_voltage_v=120.0), frequency_drift_hz=0.0
    )
    s = signals(Simulator(cfg), 6400)
    v1, v2 = phasor(s["v_l1"], 50), phasor(s["v_l2"], 50)
    angle = np.degrees(np.angle(v2 / v1))
    assert abs(abs(angle) - 180.0) < 0.01
    assert abs(v1) / math.sqrt(2) == pytest.approx(120.0, rel=0.03)


def test_voltage_harmonics_match_the_configuration():
    load = SimulatedLoad(noise_pct=0.0)
    s = signals(Simulator(site(load, frequency_drift_hz=0.0)), 6400)
    spectrum = np.abs(np.fft.rfft(s["v_l2"]))
    for h, pct in load.voltage_harmonics_pct.items():
        assert 100 * spectrum[50 * h] / spectrum[50] == pytest.approx(pct, rel=0.02)


# --------------------------------------------------------------------------------------------
# Currents and power


def system_power(s: dict[str, np.ndarray]) -> float:
    return sum(float(np.mean(s[f"v_l{p}"] * s[f"i_l{p}"])) for p in (1, 2, 3))


def test_power_is_exported_at_a_sunny_noon_and_imported_at_night():
    load = SimulatedLoad(pv_cloudiness=0.0)
    noon = Simulator(site(load).model_copy(update={"start_s": MIDNIGHT + 12.5 * 3600}))
    night = Simulator(site(load).model_copy(update={"start_s": MIDNIGHT + 3 * 3600}))
    evening = Simulator(site(load).model_copy(update={"start_s": MIDNIGHT + 19.75 * 3600}))
    p_noon = system_power(signals(noon, 6400))
    p_night = system_power(signals(night, 6400))
    p_evening = system_power(signals(evening, 6400))
    assert p_noon < -1000.0
    assert 0.0 < p_night < p_evening
    assert load.base_load_w < p_night < load.peak_load_w
    # Exporting, the current's fundamental is opposite the voltage.
    s = signals(
        Simulator(
            site(load, frequency_drift_hz=0.0).model_copy(
                update={"start_s": MIDNIGHT + 12.5 * 3600}
            )
        ),
        6400,
    )
    angle = np.degrees(np.angle(phasor(s["i_l1"], 50) / phasor(s["v_l1"], 50)))
    assert abs(angle) > 150.0


def test_the_default_main_load_imports_most_of_the_day_and_exports_around_midday():
    source = Simulator(SimulatorConfig(start_s=MIDNIGHT, sample_rate_hz=4000.0))
    hours = np.arange(0.0, 24.0, 0.5)
    power = []
    for h in hours:
        s = Simulator(source.config.model_copy(update={"start_s": MIDNIGHT + h * 3600}))
        power.append(system_power(signals(s, 800)))
    exporting = hours[np.array(power) < 0.0]
    assert 4 <= exporting.size <= 16
    assert exporting.min() >= 8.0 and exporting.max() <= 17.0


@pytest.mark.parametrize("capacitive", [False, True])
def test_reactive_power_sign_follows_the_power_factor(capacitive):
    load = clean(power_factor=0.8, power_factor_capacitive=capacitive, pv_peak_w=0.0)
    s = signals(Simulator(site(load, frequency_drift_hz=0.0)), 6400)
    for p in (1, 2, 3):
        # Current lagging the voltage (inductive) means angle(V) - angle(I) > 0.
        lag = np.angle(phasor(s[f"v_l{p}"], 50) / phasor(s[f"i_l{p}"], 50))
        expected = math.acos(0.8) * (-1 if capacitive else 1)
        assert lag == pytest.approx(expected, rel=0.11)


def test_current_harmonics_match_the_configuration():
    load = SimulatedLoad(noise_pct=0.0, pv_peak_w=0.0, appliance_share_pct=0.0)
    s = signals(Simulator(site(load, frequency_drift_hz=0.0)), 6400)
    for p in (1, 2, 3):
        spectrum = np.abs(np.fft.rfft(s[f"i_l{p}"]))
        for h, pct in load.current_harmonics_pct.items():
            assert 100 * spectrum[50 * h] / spectrum[50] == pytest.approx(pct, rel=0.03)


def test_neutral_current_is_the_sum_of_the_phase_currents():
    s = signals(Simulator(site(clean(current_harmonics_pct={3: 20.0}))), 6400)
    np.testing.assert_allclose(s["i_n"], s["i_l1"] + s["i_l2"] + s["i_l3"], atol=1e-12)
    # The phases' third harmonics are in phase (zero sequence): they add up in the neutral.
    fundamentals = sum(np.abs(np.fft.rfft(s[f"i_l{p}"]))[50] for p in (1, 2, 3))
    assert np.abs(np.fft.rfft(s["i_n"]))[150] == pytest.approx(0.2 * fundamentals, rel=0.01)


@pytest.mark.parametrize("primary_a", [65.0, 400.0])
def test_noise_scales_with_the_ct_full_scale(primary_a):
    load = SimulatedLoad(
        base_load_w=0.0,
        peak_load_w=0.0,
        pv_peak_w=0.0,
        noise_pct=0.1,
        ct_type=CtType.A5,
        ct_primary_a=primary_a,
    )
    s = signals(Simulator(site(load)), 30000)
    for name in ("i_l1", "i_l2", "i_l3", "i_n"):
        assert rms(s[name]) == pytest.approx(0.001 * primary_a, rel=0.05)
