"""Energy and hour counters against VARIABLES.md: known answers, properties and precision."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from emsbox.metering.energy import (
    CounterState,
    EnergyCounters,
    counter_names,
    default_start_threshold_w,
    partial_names,
    phases_in_use,
)
from emsbox.metering.readings import WindowBatch
from emsbox.samples import Wiring
from emsbox.variables import COUNTER_NAMES

THREE_PHASE = (Wiring.THREE_PHASE_3W, Wiring.THREE_PHASE_4W, Wiring.WILD_LEG)
PARTIALS = (
    "kwh_imp_partial",
    "kwh_exp_partial",
    "kvarh_imp_partial",
    "kvarh_exp_partial",
    "kvah_partial",
    "hours_imp_partial",
    "hours_exp_partial",
)


def batch(
    wiring: Wiring,
    dt: np.ndarray,
    p: np.ndarray | float,
    q: np.ndarray | float,
    s: np.ndarray | float,
) -> WindowBatch:
    """Windows of a balanced load: every phase in use carries its share of P, Q and S."""
    n = len(dt)
    phases = phases_in_use(wiring)
    p_sys, q_sys, s_sys = (np.broadcast_to(np.asarray(x, float), (n,)).copy() for x in (p, q, s))
    values = {"p_sys": p_sys, "q_sys": q_sys, "s_sys": s_sys}
    for ph in phases:
        values[f"p_{ph}"] = p_sys / len(phases)
        values[f"q_{ph}"] = q_sys / len(phases)
        values[f"s_{ph}"] = s_sys / len(phases)
    start = np.concatenate([[0.0], np.cumsum(dt)[:-1]])
    return WindowBatch("load", wiring, start, np.asarray(dt, float), values)


def one_hour(wiring: Wiring, p: float, q: float, s: float, windows: int = 18_000) -> WindowBatch:
    return batch(wiring, np.full(windows, 3600.0 / windows), p, q, s)


def fresh(wiring: Wiring = Wiring.THREE_PHASE_4W, threshold: float = 13.8) -> EnergyCounters:
    return EnergyCounters(wiring, threshold)


# --- Which counters exist -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wiring", "phases"),
    [
        (Wiring.SINGLE_PHASE, ("l1",)),
        (Wiring.SPLIT_PHASE, ("l1", "l2")),
        (Wiring.THREE_PHASE_3W, ("l1", "l2", "l3")),
        (Wiring.THREE_PHASE_4W, ("l1", "l2", "l3")),
        (Wiring.WILD_LEG, ("l1", "l2", "l3")),
    ],
)
def test_each_wiring_has_per_phase_counters_only_for_its_phases(wiring, phases):
    names = set(counter_names(wiring))
    per_phase = {f"{s}_{d}_{ph}" for s in ("kwh", "kvarh") for d in ("imp", "exp") for ph in phases}
    absent = {
        f"{s}_{d}_{ph}"
        for s in ("kwh", "kvarh")
        for d in ("imp", "exp")
        for ph in {"l1", "l2", "l3"} - set(phases)
    }
    assert per_phase <= names
    assert not names & absent
    assert len(names) == 29 + 4 * len(phases)
    assert names - per_phase == set(COUNTER_NAMES) - per_phase - absent
    counters = fresh(wiring)
    counters.integrate(one_hour(wiring, 1000.0, 0.0, 1000.0, windows=10), tariff=1)
    snap = counters.snapshot()
    assert tuple(snap) == counter_names(wiring)
    for ph in phases:
        assert snap[f"kwh_imp_{ph}"] == pytest.approx(1.0 / len(phases), rel=1e-12)


def test_partial_names_are_the_seven_partials():
    assert set(partial_names(Wiring.SINGLE_PHASE)) == set(PARTIALS)


@pytest.mark.parametrize(
    ("wiring", "expected"),
    [(Wiring.SINGLE_PHASE, 4.6), (Wiring.SPLIT_PHASE, 4.8), (Wiring.THREE_PHASE_4W, 13.8)],
)
def test_default_start_threshold_is_20_ma_per_phase_in_use(wiring, expected):
    nominal = 120.0 if wiring is Wiring.SPLIT_PHASE else 230.0
    assert default_start_threshold_w(wiring, nominal) == pytest.approx(expected)


# --- Known answers -------------------------------------------------------------------------

QUADRANT_CASES = [
    (1, 3000.0, 1200.0),
    (2, -3000.0, 1200.0),
    (3, -3000.0, -1200.0),
    (4, 3000.0, -1200.0),
]


@pytest.mark.parametrize(("quadrant", "p", "q"), QUADRANT_CASES)
def test_constant_load_in_each_quadrant_fills_exactly_its_counters(quadrant, p, q):
    s = math.hypot(p, q)
    counters = fresh()
    counters.integrate(one_hour(Wiring.THREE_PHASE_4W, p, q, s), tariff=1)
    snap = counters.snapshot()
    kwh, kvarh, kvah = abs(p) / 1000.0, abs(q) / 1000.0, s / 1000.0
    p_dir = "imp" if p > 0 else "exp"
    q_dir = "imp" if q > 0 else "exp"
    expected = {
        f"kwh_{p_dir}": kwh,
        f"kwh_{p_dir}_partial": kwh,
        f"kwh_q{quadrant}": kwh,
        f"kvarh_{q_dir}": kvarh,
        f"kvarh_{q_dir}_partial": kvarh,
        f"kvarh_q{quadrant}": kvarh,
        "kvah": kvah,
        "kvah_partial": kvah,
        f"kvah_q{quadrant}": kvah,
        f"hours_{p_dir}": 1.0,
        f"hours_{p_dir}_partial": 1.0,
        "hours_on": 1.0,
    }
    if p > 0:
        expected["kwh_imp_t1"] = kwh
    for ph in ("l1", "l2", "l3"):
        expected[f"kwh_{p_dir}_{ph}"] = kwh / 3
        expected[f"kvarh_{q_dir}_{ph}"] = kvarh / 3
    for name, value in snap.items():
        assert value == pytest.approx(expected.get(name, 0.0), rel=1e-12, abs=0.0), name


@pytest.mark.parametrize(
    ("p", "q", "quadrant"),
    [(0.0, 0.0, 1), (0.0, 500.0, 1), (-0.0, 500.0, 1), (-1.0, 0.0, 2), (0.0, -500.0, 4)],
)
def test_zero_p_or_q_belongs_to_the_quadrant_of_the_definitions(p, q, quadrant):
    counters = fresh(Wiring.SINGLE_PHASE, 0.0)
    counters.integrate(one_hour(Wiring.SINGLE_PHASE, p, q, 700.0, windows=100), tariff=1)
    snap = counters.snapshot()
    assert [snap[f"kvah_q{k}"] for k in (1, 2, 3, 4)] == pytest.approx(
        [0.7 if k == quadrant else 0.0 for k in (1, 2, 3, 4)], rel=1e-12
    )


def test_per_phase_counters_follow_each_phase_sign_not_the_system():
    dt = np.full(10, 360.0)
    b = batch(Wiring.THREE_PHASE_4W, dt, 1000.0, 0.0, 4000.0)
    b.values["p_l1"][:] = 2000.0
    b.values["p_l2"][:] = -500.0
    b.values["p_l3"][:] = -500.0
    b.values["q_l1"][:] = 300.0
    b.values["q_l3"][:] = -300.0
    counters = fresh()
    counters.integrate(b, tariff=2)
    snap = counters.snapshot()
    assert snap["kwh_imp"] == pytest.approx(1.0)
    assert snap["kwh_imp_l1"] == pytest.approx(2.0)
    assert snap["kwh_exp_l2"] == pytest.approx(0.5)
    assert snap["kwh_exp_l3"] == pytest.approx(0.5)
    assert snap["kwh_exp"] == 0.0
    assert snap["kvarh_imp_l1"] == pytest.approx(0.3)
    assert snap["kvarh_exp_l3"] == pytest.approx(0.3)
    assert snap["kvarh_imp"] == snap["kvarh_exp"] == 0.0


def test_tariff_switching_between_batches_splits_import_only():
    counters = fresh()
    counters.integrate(one_hour(Wiring.THREE_PHASE_4W, 1000.0, 0.0, 1000.0, 10), tariff=1)
    counters.integrate(one_hour(Wiring.THREE_PHASE_4W, 2000.0, 0.0, 2000.0, 10), tariff=2)
    counters.integrate(one_hour(Wiring.THREE_PHASE_4W, -4000.0, 0.0, 4000.0, 10), tariff=2)
    counters.integrate(one_hour(Wiring.THREE_PHASE_4W, 500.0, 0.0, 500.0, 10), tariff=1)
    snap = counters.snapshot()
    assert snap["kwh_imp_t1"] == pytest.approx(1.5)
    assert snap["kwh_imp_t2"] == pytest.approx(2.0)
    assert snap["kwh_imp"] == pytest.approx(3.5)
    assert snap["kwh_exp"] == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("p", "imp", "exp"),
    [
        (10.0 + 1e-9, 1.0, 0.0),  # just above
        (10.0, 0.0, 0.0),  # exactly at: not "exceeding"
        (10.0 - 1e-9, 0.0, 0.0),  # just below
        (0.0, 0.0, 0.0),
        (-10.0 + 1e-9, 0.0, 0.0),
        (-10.0, 0.0, 0.0),
        (-10.0 - 1e-9, 0.0, 1.0),
    ],
)
def test_hour_counters_use_the_starting_threshold_but_energy_does_not(p, imp, exp):
    counters = fresh(Wiring.SINGLE_PHASE, threshold=10.0)
    counters.integrate(one_hour(Wiring.SINGLE_PHASE, p, 0.0, abs(p), windows=36), tariff=1)
    snap = counters.snapshot()
    assert snap["hours_imp"] == pytest.approx(imp) == snap["hours_imp_partial"]
    assert snap["hours_exp"] == pytest.approx(exp) == snap["hours_exp_partial"]
    assert snap["hours_on"] == pytest.approx(1.0)
    # No creep cut-off: the energy below the threshold is counted.
    assert snap["kwh_imp"] - snap["kwh_exp"] == pytest.approx(p / 1000.0, rel=1e-12, abs=1e-18)


def test_hours_on_counts_every_window_including_idle_ones():
    counters = fresh(Wiring.SINGLE_PHASE, threshold=5.0)
    dt = np.array([0.2, 0.2, 0.2, 0.2])
    counters.integrate(batch(Wiring.SINGLE_PHASE, dt, [100.0, 0.0, -100.0, 1.0], 0.0, 0.0), 1)
    snap = counters.snapshot()
    assert snap["hours_on"] == pytest.approx(0.8 / 3600)
    assert snap["hours_imp"] == pytest.approx(0.2 / 3600)
    assert snap["hours_exp"] == pytest.approx(0.2 / 3600)


def test_energy_uses_each_windows_own_duration():
    dt = np.array([0.19, 0.2, 0.21, 1.0])
    p = np.array([1000.0, 2000.0, -3000.0, 500.0])
    counters = fresh(Wiring.SINGLE_PHASE)
    counters.integrate(batch(Wiring.SINGLE_PHASE, dt, p, 0.0, np.abs(p)), tariff=1)
    snap = counters.snapshot()
    assert snap["kwh_imp"] == pytest.approx((190 + 400 + 500) / 3.6e6, rel=1e-12)
    assert snap["kwh_exp"] == pytest.approx(630 / 3.6e6, rel=1e-12)


def test_add_window_equals_integrating_a_one_window_batch():
    b = batch(Wiring.SPLIT_PHASE, np.array([0.2013]), -1234.5, 678.9, 1500.0)
    a, c = fresh(Wiring.SPLIT_PHASE), fresh(Wiring.SPLIT_PHASE)
    a.integrate(one_hour(Wiring.SPLIT_PHASE, 100.0, 1.0, 101.0, 7), tariff=2)
    c.integrate(one_hour(Wiring.SPLIT_PHASE, 100.0, 1.0, 101.0, 7), tariff=2)
    a.integrate(b, tariff=2)
    c.add_window(b.window(0), 0.2013, tariff=2)
    assert a.state() == c.state()


def test_empty_batch_changes_nothing():
    counters = fresh()
    counters.integrate(WindowBatch.empty("load", Wiring.THREE_PHASE_4W), tariff=1)
    assert counters.sequence == 0
    assert set(counters.snapshot().values()) == {0.0}


# --- Partial counters: every transition ----------------------------------------------------


def hour_of_import() -> WindowBatch:
    return one_hour(Wiring.THREE_PHASE_4W, 1000.0, 100.0, 1100.0, windows=10)


def partials(counters: EnergyCounters) -> dict[str, float]:
    return {n: v for n, v in counters.snapshot().items() if n in PARTIALS}


def test_partials_run_from_the_start_and_follow_the_totals():
    counters = fresh()
    assert counters.partial_running
    counters.integrate(hour_of_import(), tariff=1)
    snap = counters.snapshot()
    for name in PARTIALS:
        assert snap[name] == snap[name.removesuffix("_partial")]


def test_start_while_running_is_a_no_op():
    counters = fresh()
    counters.integrate(hour_of_import(), tariff=1)
    before, seq = counters.state(), counters.sequence
    counters.start_partial()
    assert counters.partial_running
    assert counters.sequence == seq
    assert counters.state() == before


def test_stop_while_running_freezes_partials_but_not_totals():
    counters = fresh()
    counters.integrate(hour_of_import(), tariff=1)
    counters.stop_partial()
    assert not counters.partial_running
    frozen = partials(counters)
    counters.integrate(hour_of_import(), tariff=1)
    assert partials(counters) == frozen
    assert counters.snapshot()["kwh_imp"] == pytest.approx(2.0)
    assert counters.snapshot()["kwh_imp_partial"] == pytest.approx(1.0)


def test_stop_while_stopped_is_a_no_op():
    counters = fresh()
    counters.stop_partial()
    before = counters.state()
    counters.stop_partial()
    assert not counters.partial_running
    assert counters.state() == before


def test_start_while_stopped_resumes_from_the_frozen_values():
    counters = fresh()
    counters.integrate(hour_of_import(), tariff=1)
    counters.stop_partial()
    counters.integrate(hour_of_import(), tariff=1)
    counters.start_partial()
    assert counters.partial_running
    counters.integrate(hour_of_import(), tariff=1)
    assert counters.snapshot()["kwh_imp_partial"] == pytest.approx(2.0)
    assert counters.snapshot()["hours_imp_partial"] == pytest.approx(2.0)
    assert counters.snapshot()["kwh_imp"] == pytest.approx(3.0)


def test_reset_while_running_zeroes_every_partial_and_keeps_running():
    counters = fresh()
    counters.integrate(hour_of_import(), tariff=1)
    counters.integrate(one_hour(Wiring.THREE_PHASE_4W, -1000.0, -100.0, 1100.0, 10), tariff=1)
    assert all(v > 0.0 for v in partials(counters).values())
    totals = {n: v for n, v in counters.snapshot().items() if n not in PARTIALS}
    counters.reset_partial()
    assert counters.partial_running
    assert set(partials(counters).values()) == {0.0}
    assert {n: v for n, v in counters.snapshot().items() if n not in PARTIALS} == totals
    counters.integrate(hour_of_import(), tariff=1)
    assert counters.snapshot()["kwh_imp_partial"] == pytest.approx(1.0)


def test_reset_while_stopped_zeroes_and_stays_stopped():
    counters = fresh()
    counters.integrate(hour_of_import(), tariff=1)
    counters.stop_partial()
    counters.reset_partial()
    assert not counters.partial_running
    assert set(partials(counters).values()) == {0.0}
    counters.integrate(hour_of_import(), tariff=1)
    assert set(partials(counters).values()) == {0.0}
    assert counters.snapshot()["kwh_imp"] == pytest.approx(2.0)


def test_integrate_can_start_or_stop_the_partials_first():
    counters = fresh()
    counters.integrate(hour_of_import(), tariff=1, partial_running=False)
    assert not counters.partial_running
    assert counters.snapshot()["kwh_imp_partial"] == 0.0
    counters.integrate(hour_of_import(), tariff=1, partial_running=True)
    assert counters.partial_running
    assert counters.snapshot()["kwh_imp_partial"] == pytest.approx(1.0)


def test_every_change_advances_the_sequence():
    counters = fresh()
    counters.integrate(hour_of_import(), tariff=1)
    counters.stop_partial()
    counters.reset_partial()
    counters.start_partial()
    counters.add_window(hour_of_import().window(0), 0.2, tariff=1)
    assert counters.sequence == 5


# --- State -----------------------------------------------------------------------------------


def test_state_round_trips_exactly_through_json_and_from_state():
    counters = fresh(Wiring.SPLIT_PHASE)
    counters.integrate(batch(Wiring.SPLIT_PHASE, np.full(7, 0.1999), 1234.567, -89.1, 1300.0), 2)
    counters.stop_partial()
    state = counters.state()
    text = state.to_json()
    again = CounterState.from_json(text)
    assert again == state
    assert again.to_json() == text
    resumed = EnergyCounters.from_state(again, counters.start_threshold_w)
    assert resumed.snapshot() == counters.snapshot()
    assert not resumed.partial_running
    assert resumed.sequence == counters.sequence
    more = batch(Wiring.SPLIT_PHASE, np.full(3, 0.2), 10.0, 1.0, 11.0)
    counters.integrate(more, tariff=1)
    resumed.integrate(more, tariff=1)
    assert resumed.state() == counters.state()
    assert state.counters() == EnergyCounters.from_state(state, 0.0).snapshot()


def test_state_refuses_counters_of_another_wiring_or_impossible_values():
    state = fresh(Wiring.THREE_PHASE_4W).state()
    data = state.model_dump()
    with pytest.raises(ValidationError, match=r"unexpected \['kvarh_exp_l3'"):
        CounterState.model_validate({**data, "wiring": Wiring.SPLIT_PHASE})
    with pytest.raises(ValidationError, match=r"missing \['kvarh_exp_l2'"):
        single = fresh(Wiring.SINGLE_PHASE).state().model_dump()
        CounterState.model_validate({**single, "wiring": Wiring.THREE_PHASE_4W})
    with pytest.raises(ValidationError, match="negative"):
        CounterState.model_validate({**data, "micro": {**data["micro"], "kwh_imp": -1}})
    with pytest.raises(ValidationError, match=r"\[0, 1\)"):
        CounterState.model_validate({**data, "residue": {**data["residue"], "kvah": 1.0}})
    with pytest.raises(ValidationError):
        CounterState.from_json('{"wiring": "3P4W"}')


# --- Refused input ---------------------------------------------------------------------------


def test_bad_input_is_refused_without_changing_the_counters():
    counters = fresh(Wiring.SINGLE_PHASE)
    good = batch(Wiring.SINGLE_PHASE, np.full(3, 0.2), 100.0, 0.0, 100.0)
    cases = []
    for name, bad in (
        ("p_sys", np.nan),
        ("q_l1", np.inf),
        ("s_sys", -1.0),
    ):
        b = batch(Wiring.SINGLE_PHASE, np.full(3, 0.2), 100.0, 0.0, 100.0)
        b.values[name][1] = bad
        cases.append((b, 1, name))
    negative_dt = batch(Wiring.SINGLE_PHASE, np.array([0.2, -0.2, 0.2]), 100.0, 0.0, 100.0)
    cases.append((negative_dt, 1, "duration_s"))
    missing = batch(Wiring.SINGLE_PHASE, np.full(3, 0.2), 100.0, 0.0, 100.0)
    del missing.values["q_l1"]
    cases.append((missing, 1, "q_l1"))
    cases.append((good, 3, "tariff"))
    cases.append((batch(Wiring.SPLIT_PHASE, np.full(3, 0.2), 1.0, 0.0, 1.0), 1, "2P3W"))
    for b, tariff, message in cases:
        with pytest.raises(ValueError, match=message):
            counters.integrate(b, tariff=tariff)
    assert counters.sequence == 0
    assert set(counters.snapshot().values()) == {0.0}
    with pytest.raises(ValueError, match="p_l1"):
        counters.add_window({"p_sys": 1.0, "q_sys": 0.0, "s_sys": 1.0}, 0.2, tariff=1)
    with pytest.raises(ValueError, match="threshold"):
        EnergyCounters(Wiring.SINGLE_PHASE, -1.0)


# --- Properties ------------------------------------------------------------------------------

POWER = st.floats(min_value=-2e5, max_value=2e5, allow_nan=False)


@st.composite
def loads(draw: st.DrawFn, wiring: Wiring | None = None, same_sign: bool = False) -> WindowBatch:
    """Random windows (of a random wiring if none given); system values sum the phases'."""
    if wiring is None:
        wiring = draw(st.sampled_from(list(Wiring)))
    n = draw(st.integers(min_value=1, max_value=30))
    phases = phases_in_use(wiring)
    dt = np.array(draw(st.lists(st.floats(0.0, 2.0), min_size=n, max_size=n)))
    power = st.floats(0.0, 2e5) if same_sign else POWER
    values: dict[str, np.ndarray] = {}
    for x in ("p", "q"):
        sign = draw(st.sampled_from([1.0, -1.0])) if same_sign else 1.0
        for ph in phases:
            values[f"{x}_{ph}"] = sign * np.array(draw(st.lists(power, min_size=n, max_size=n)))
        values[f"{x}_sys"] = sum(values[f"{x}_{ph}"] for ph in phases)
    extra = np.array(draw(st.lists(st.floats(1.0, 1.5), min_size=n, max_size=n)))
    values["s_sys"] = np.hypot(values["p_sys"], values["q_sys"]) * extra
    start = np.concatenate([[0.0], np.cumsum(dt)[:-1]])
    return WindowBatch("load", wiring, start, dt, values)


def sub_batch(b: WindowBatch, lo: int, hi: int) -> WindowBatch:
    return WindowBatch(
        b.load, b.wiring, b.start_s[lo:hi], b.duration_s[lo:hi],
        {k: v[lo:hi] for k, v in b.values.items()},
    )  # fmt: skip


def close(a: float, b: float, scale: float = 0.0) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12 * scale + 1e-300)


PROPERTY = settings(max_examples=150, deadline=None)


@PROPERTY
@given(loads(), st.data())
def test_splitting_a_batch_anyhow_gives_the_same_counters(b, data):
    cuts = data.draw(st.lists(st.integers(0, b.n_windows), max_size=6).map(sorted))
    whole, pieces = fresh(b.wiring, 50.0), fresh(b.wiring, 50.0)
    whole.integrate(b, tariff=1)
    for lo, hi in zip([0, *cuts], [*cuts, b.n_windows], strict=True):
        pieces.integrate(sub_batch(b, lo, hi), tariff=1)
    one, many = whole.snapshot(), pieces.snapshot()
    for name in one:
        assert close(one[name], many[name]), (name, one[name], many[name])


@PROPERTY
@given(st.data(), st.sampled_from(list(Wiring)))
def test_counters_never_decrease_and_the_definitions_hold(data, wiring):
    batches = data.draw(st.lists(loads(wiring), min_size=1, max_size=5))
    counters = fresh(wiring, 50.0)
    previous = counters.snapshot()
    net = abs_p = abs_q = 0.0
    for b in batches:
        counters.integrate(b, tariff=data.draw(st.sampled_from([1, 2])))
        snap = counters.snapshot()
        assert all(snap[n] >= previous[n] for n in snap)
        previous = snap
        net += math.fsum(b.values["p_sys"] * b.duration_s) / 3.6e6
        abs_p += math.fsum(np.abs(b.values["p_sys"]) * b.duration_s) / 3.6e6
        abs_q += math.fsum(np.abs(b.values["q_sys"]) * b.duration_s) / 3.6e6
    s = counters.snapshot()
    assert close(s["kwh_imp"] - s["kwh_exp"], net, abs_p)
    assert close(s["kwh_imp"] + s["kwh_exp"], abs_p, abs_p)
    assert close(sum(s[f"kwh_q{k}"] for k in (1, 2, 3, 4)), s["kwh_imp"] + s["kwh_exp"], abs_p)
    assert close(s["kwh_q1"] + s["kwh_q4"], s["kwh_imp"], abs_p)
    assert close(s["kwh_imp_t1"] + s["kwh_imp_t2"], s["kwh_imp"], abs_p)
    total_q = s["kvarh_imp"] + s["kvarh_exp"]
    assert close(sum(s[f"kvarh_q{k}"] for k in (1, 2, 3, 4)), total_q, abs_q)
    assert close(s["kvarh_q1"] + s["kvarh_q2"], s["kvarh_imp"], abs_q)
    assert close(sum(s[f"kvah_q{k}"] for k in (1, 2, 3, 4)), s["kvah"], s["kvah"])
    assert s["hours_imp"] + s["hours_exp"] <= s["hours_on"] * (1 + 1e-12)
    for name in PARTIALS:
        assert s[name] == s[name.removesuffix("_partial")]


@PROPERTY
@given(loads(same_sign=True))
def test_phases_of_one_sign_add_up_to_the_system(b):
    counters = fresh(b.wiring, 0.0)
    counters.integrate(b, tariff=1)
    s = counters.snapshot()
    phases = phases_in_use(b.wiring)
    for stem in ("kwh", "kvarh"):
        scale = s[f"{stem}_imp"] + s[f"{stem}_exp"]
        for d in ("imp", "exp"):
            per_phase = sum(s[f"{stem}_{d}_{ph}"] for ph in phases)
            assert close(per_phase, s[f"{stem}_{d}"], scale), (stem, d)


# --- Precision -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_year_of_fifth_second_windows_at_100_kw_is_exact_to_a_watt_hour():
    n = 262_800  # 14.6 hours of 0.2 s windows; 600 of them make 365 days
    p = np.full(n, 100_000.0)
    b = batch(Wiring.SINGLE_PHASE, np.full(n, 0.2), p, 0.0, p)
    counters = fresh(Wiring.SINGLE_PHASE, 4.6)
    for _ in range(600):
        counters.integrate(b, tariff=1)
    snap = counters.snapshot()
    assert snap["kwh_imp"] == pytest.approx(876_000.0, abs=0.001)
    assert snap["kwh_imp_t1"] == pytest.approx(876_000.0, abs=0.001)
    assert snap["kvah"] == pytest.approx(876_000.0, abs=0.001)
    assert snap["hours_on"] == pytest.approx(8760.0, abs=1e-6)


def test_window_by_window_on_a_large_counter_loses_nothing():
    """Each window is tiny next to the counter: a naive float sum would drift, this may not."""
    start = fresh(Wiring.SINGLE_PHASE).state().model_dump()
    start["micro"]["kwh_imp"] = 876_000 * 10**6
    counters = EnergyCounters.from_state(CounterState.model_validate(start), 4.6)
    # A steady load: every addition to a plain float counter rounds the same way, so its
    # error grows linearly with the number of windows.
    p, dt, n = 99_999.7, 0.2, 10_000
    window = {"p_sys": p, "q_sys": 0.0, "s_sys": p, "p_l1": p, "q_l1": 0.0}
    naive = 876_000.0
    for _ in range(n):
        counters.add_window(window, dt, tariff=1)
        naive += p * dt / 3.6e6
    exact = 876_000.0 + n * (p * dt) / 3.6e6
    assert counters.snapshot()["kwh_imp"] == pytest.approx(exact, abs=1e-9)
    # The test can tell: a plain float kWh counter is off by far more than its tolerance.
    assert abs(naive - exact) > 1e-7
