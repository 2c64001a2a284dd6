"""Synthetic three-phase test signals and their values computed from the definitions.

This module is deliberately independent of the measurement engine: every waveform is a sum of
sinusoids (plus DC and white noise) described by rms phasors per harmonic order, and every
expected value of VARIABLES.md follows from phasor algebra on those phasors:

* TRMS of a waveform: ``sqrt(DC² + Σ_h |X_h|² + σ²)`` (σ² = variance of added white noise);
* active power: ``Σ_h Re(V_h·conj(I_h)) + V_dc·I_dc``;
* reactive power (fundamental only, IEEE 1459 Q1): ``Im(V_1·conj(I_1))``, positive when the
  current lags the voltage (inductive);
* apparent power ``V·I`` per phase, the system value the arithmetic sum of the phases;
* THD: ``100·sqrt(Σ_{h=2..31} |X_h|²) / |X_1|`` (DC is not a harmonic, orders above 31 are out);
* line-to-line waveforms, virtual-star voltages and the neutral current are linear
  combinations of the phase waveforms, formed harmonic by harmonic.

A waveform with phasor ``X_h`` of order ``h`` and fundamental phase angle ``θ(t)`` is
``x(t) = DC + Σ_h √2·|X_h|·cos(h·θ(t) + arg X_h)``; ``θ`` is the integral of the frequency, so
slow frequency ramps and phase-continuous steps are built the same way as steady signals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from emsbox.samples import Wiring

Array = npt.NDArray[np.float64]

MAX_HARMONIC = 31
SQRT2 = math.sqrt(2.0)


def polar(rms: float, phase_deg: float) -> complex:
    """The rms phasor of magnitude ``rms`` at ``phase_deg`` degrees."""
    return complex(rms * math.cos(math.radians(phase_deg)), rms * math.sin(math.radians(phase_deg)))


@dataclass(frozen=True)
class Wave:
    """A periodic waveform: rms phasors per harmonic order, a DC part and a noise variance.

    ``noise_var`` is the variance of white noise added to the samples (per channel when the
    wave is a measured channel; propagated through sums and differences as independent
    noise when the wave is derived from channels).
    """

    phasors: Mapping[int, complex] = field(default_factory=dict)
    dc: float = 0.0
    noise_var: float = 0.0

    # -- arithmetic (harmonic by harmonic) ----------------------------------------------

    def __add__(self, other: Wave) -> Wave:
        orders = set(self.phasors) | set(other.phasors)
        ph = {h: self.phasors.get(h, 0j) + other.phasors.get(h, 0j) for h in orders}
        return Wave(ph, self.dc + other.dc, self.noise_var + other.noise_var)

    def __neg__(self) -> Wave:
        return self.scaled(-1.0)

    def __sub__(self, other: Wave) -> Wave:
        return self + (-other)

    def scaled(self, k: float) -> Wave:
        """``k`` times the wave (noise variance scales by k²)."""
        return Wave(
            {h: k * x for h, x in self.phasors.items()}, k * self.dc, k * k * self.noise_var
        )

    def with_noise(self, sigma: float) -> Wave:
        """The same wave with white noise of standard deviation ``sigma`` added."""
        return Wave(self.phasors, self.dc, sigma * sigma)

    # -- values from the definitions ----------------------------------------------------

    def fundamental(self) -> complex:
        """The rms phasor of the fundamental."""
        return self.phasors.get(1, 0j)

    def rms(self) -> float:
        """TRMS: square root of DC², every harmonic's rms² and the noise variance."""
        total = self.dc**2 + sum(abs(x) ** 2 for x in self.phasors.values()) + self.noise_var
        return math.sqrt(total)

    def thd(self) -> float:
        """THD in %: harmonics 2…31 relative to the fundamental (0 without fundamental)."""
        a1 = abs(self.fundamental())
        if a1 == 0.0:
            return 0.0
        harm = sum(abs(x) ** 2 for h, x in self.phasors.items() if 2 <= h <= MAX_HARMONIC)
        return 100.0 * math.sqrt(harm) / a1

    def samples(self, theta: Array, rng: np.random.Generator | None = None) -> Array:
        """Sampled waveform for fundamental phase angles ``theta`` (rad), noise from ``rng``."""
        x = np.full(theta.shape, self.dc, dtype=np.float64)
        for h, ph in sorted(self.phasors.items()):
            if ph != 0j:
                x += SQRT2 * abs(ph) * np.cos(h * theta + np.angle(ph))
        if self.noise_var > 0.0:
            if rng is None:
                raise ValueError("a noisy wave needs a random generator")
            x += rng.normal(0.0, math.sqrt(self.noise_var), theta.shape)
        return x


def wave(
    rms: float,
    phase_deg: float = 0.0,
    harmonics: Mapping[int, tuple[float, float]] | None = None,
    dc: float = 0.0,
) -> Wave:
    """A wave of fundamental ``rms`` at ``phase_deg``, with ``harmonics``.

    ``harmonics[h] = (relative, phase_deg)``: rms of order ``h`` relative to the fundamental's
    rms, and its phase angle in degrees of the harmonic's own period.
    """
    ph = {1: polar(rms, phase_deg)}
    for h, (rel, deg) in (harmonics or {}).items():
        if h < 2:
            raise ValueError("harmonic orders start at 2")
        ph[h] = ph.get(h, 0j) + polar(rel * rms, deg)
    return Wave(ph, dc)


def active_power(v: Wave, i: Wave) -> float:
    """Mean of v·i: Σ_h Re(V_h·conj(I_h)) + DC·DC (independent noise averages out)."""
    orders = set(v.phasors) & set(i.phasors)
    p = sum((v.phasors[h] * i.phasors[h].conjugate()).real for h in orders)
    return float(p + v.dc * i.dc)


def reactive_power(v: Wave, i: Wave) -> float:
    """Fundamental reactive power Im(V_1·conj(I_1)): positive when the current lags."""
    return float((v.fundamental() * i.fundamental().conjugate()).imag)


# -- frequency profiles: fundamental phase angle θ(t) ---------------------------------------


def times(rate_hz: float, duration_s: float, t0_s: float = 0.0) -> Array:
    """Sample instants of a recording of ``duration_s`` starting at ``t0_s``."""
    n = round(duration_s * rate_hz)
    return t0_s + np.arange(n, dtype=np.float64) / rate_hz


def constant_frequency(freq_hz: float) -> Callable[[Array], Array]:
    """θ(t) = 2π·f·t."""

    def theta(t: Array) -> Array:
        out: Array = 2.0 * np.pi * freq_hz * t
        return out

    return theta


def frequency_ramp(f0_hz: float, f1_hz: float, ramp_s: float) -> Callable[[Array], Array]:
    """θ(t) for a frequency going linearly from f0 (t = 0) to f1 (t = ramp_s), then steady."""
    slope = (f1_hz - f0_hz) / ramp_s

    def theta(t: Array) -> Array:
        tc = np.minimum(t, ramp_s)
        cycles = f0_hz * tc + 0.5 * slope * tc * tc + f1_hz * (t - tc)
        out: Array = 2.0 * np.pi * cycles
        return out

    return theta


def frequency_step(f0_hz: float, f1_hz: float, step_s: float) -> Callable[[Array], Array]:
    """θ(t) for a phase-continuous frequency step from f0 to f1 at ``step_s``."""

    def theta(t: Array) -> Array:
        cycles = f0_hz * np.minimum(t, step_s) + f1_hz * np.maximum(t - step_s, 0.0)
        out: Array = 2.0 * np.pi * cycles
        return out

    return theta


# -- a load: its wiring, measured channels and the expected values ---------------------------

PHASES = ("l1", "l2", "l3")
PAIRS = ("l12", "l23", "l31")

# Every instantaneous variable of VARIABLES.md.
ALL_VARIABLES: frozenset[str] = frozenset(
    [f"v_{p}" for p in PHASES]
    + ["v_ln_sys"]
    + [f"v_{p}" for p in PAIRS]
    + ["v_ll_sys"]
    + [f"i_{p}" for p in PHASES]
    + ["i_n", "i_sys"]
    + [f"{k}_{p}" for k in ("p", "q", "s", "pf") for p in (*PHASES, "sys")]
    + ["freq"]
    + [f"thd_i_{p}" for p in PHASES]
    + [f"thd_v_{p}" for p in (*PHASES, *PAIRS)]
)


@dataclass(frozen=True)
class Load:
    """One load: its wiring and the waveforms of the channels a source would deliver.

    ``channels`` maps the signal names of ``emsbox.samples.SIGNALS`` to waves; build it with
    the constructors below, which also know which signals each wiring measures.
    """

    wiring: Wiring
    channels: Mapping[str, Wave]

    # -- derived waveforms, from the channels only -------------------------------------

    def phases(self) -> tuple[str, ...]:
        """Phases in use."""
        return {
            Wiring.SINGLE_PHASE: PHASES[:1],
            Wiring.SPLIT_PHASE: PHASES[:2],
        }.get(self.wiring, PHASES)

    def line_to_neutral(self) -> dict[str, Wave]:
        """L-N voltages; on 3P3W to a virtual star point (they sum to zero)."""
        c = self.channels
        if self.wiring is Wiring.THREE_PHASE_3W:
            v12, v23 = c["v_l12"], c["v_l23"]
            v31 = -(v12 + v23)
            third = 1.0 / 3.0
            return {
                "l1": (v12 - v31).scaled(third),
                "l2": (v23 - v12).scaled(third),
                "l3": (v31 - v23).scaled(third),
            }
        return {p: c[f"v_{p}"] for p in self.phases()}

    def line_to_line(self) -> dict[str, Wave]:
        """L-L voltages of the wiring (none on 1P2W, only L1-L2 on 2P3W)."""
        c = self.channels
        if self.wiring is Wiring.THREE_PHASE_3W:
            v12, v23 = c["v_l12"], c["v_l23"]
            return {"l12": v12, "l23": v23, "l31": -(v12 + v23)}
        ln = self.line_to_neutral()
        if self.wiring is Wiring.SINGLE_PHASE:
            return {}
        if self.wiring is Wiring.SPLIT_PHASE:
            return {"l12": ln["l1"] - ln["l2"]}
        return {"l12": ln["l1"] - ln["l2"], "l23": ln["l2"] - ln["l3"], "l31": ln["l3"] - ln["l1"]}

    def currents(self) -> dict[str, Wave]:
        """Phase currents; the unmeasured L2 current of 3P3W is minus the sum of the others."""
        c = self.channels
        if self.wiring is Wiring.THREE_PHASE_3W and "i_l2" not in c:
            return {"l1": c["i_l1"], "l2": -(c["i_l1"] + c["i_l3"]), "l3": c["i_l3"]}
        return {p: c[f"i_{p}"] for p in self.phases()}

    def neutral(self) -> Wave | None:
        """Neutral current: the measured channel, else the sum of the phase currents."""
        if self.wiring is Wiring.THREE_PHASE_3W:
            return None
        if "i_n" in self.channels:
            return self.channels["i_n"]
        total = Wave()
        for w in self.currents().values():
            total = total + w
        return total

    # -- expected values -----------------------------------------------------------------

    def expected(self, freq_hz: float) -> dict[str, float]:
        """Every variable the wiring has, from the definitions (the absent ones are not here)."""
        ln, ll, cur = self.line_to_neutral(), self.line_to_line(), self.currents()
        out: dict[str, float] = {}
        for p in self.phases():
            v, i = ln[p], cur[p]
            out[f"v_{p}"], out[f"i_{p}"] = v.rms(), i.rms()
            out[f"p_{p}"], out[f"q_{p}"] = active_power(v, i), reactive_power(v, i)
            out[f"s_{p}"] = v.rms() * i.rms()
            out[f"pf_{p}"] = power_factor(out[f"p_{p}"], out[f"s_{p}"])
            out[f"thd_v_{p}"], out[f"thd_i_{p}"] = v.thd(), i.thd()
        for pair, v in ll.items():
            out[f"v_{pair}"], out[f"thd_v_{pair}"] = v.rms(), v.thd()
        phases = self.phases()
        out["v_ln_sys"] = float(np.mean([out[f"v_{p}"] for p in phases]))
        if ll:
            out["v_ll_sys"] = float(np.mean([out[f"v_{pair}"] for pair in ll]))
        out["i_sys"] = float(np.mean([out[f"i_{p}"] for p in phases]))
        neutral = self.neutral()
        if neutral is not None:
            out["i_n"] = neutral.rms()
        if self.wiring is Wiring.THREE_PHASE_3W:
            # Two-wattmeter (Aron) method, L2 common: v12·i1 + v32·i3.
            c = self.channels
            v32 = -c["v_l23"]
            out["p_sys"] = active_power(c["v_l12"], cur["l1"]) + active_power(v32, cur["l3"])
            out["q_sys"] = reactive_power(c["v_l12"], cur["l1"]) + reactive_power(v32, cur["l3"])
        else:
            out["p_sys"] = sum(out[f"p_{p}"] for p in phases)
            out["q_sys"] = sum(out[f"q_{p}"] for p in phases)
        out["s_sys"] = sum(out[f"s_{p}"] for p in phases)
        out["pf_sys"] = power_factor(out["p_sys"], out["s_sys"])
        out["freq"] = freq_hz
        return out

    def absent(self) -> frozenset[str]:
        """Variables of VARIABLES.md that cannot exist for this wiring."""
        return ALL_VARIABLES - set(self.expected(50.0))

    # -- transformations -----------------------------------------------------------------

    def map_currents(self, f: Callable[[Wave], Wave]) -> Load:
        """The same load with ``f`` applied to every current channel."""
        ch = {n: (f(w) if n.startswith("i_") else w) for n, w in self.channels.items()}
        return Load(self.wiring, ch)

    def sample(self, theta: Callable[[Array], Array], t: Array, seed: int = 0) -> dict[str, Array]:
        """Samples of every channel at instants ``t``; noise from a generator seeded ``seed``."""
        rng = np.random.default_rng(seed)
        th = theta(t)
        return {name: w.samples(th, rng) for name, w in self.channels.items()}


def power_factor(p: float, s: float) -> float:
    """P/S (sign of P); 1 without apparent power (the engine's no-load convention)."""
    return p / s if s > 0.0 else 1.0


def with_noise(load: Load, fraction: float) -> Load:
    """Every channel with white noise of ``fraction`` × the peak of its fundamental."""
    ch = {
        n: w.with_noise(fraction * SQRT2 * abs(w.fundamental())) for n, w in load.channels.items()
    }
    return Load(load.wiring, ch)


# -- constructors per wiring -------------------------------------------------------------------


def single_phase(v: Wave, i: Wave, i_n: Wave | None = None) -> Load:
    """1P2W: one L-N voltage and one current (optionally a measured neutral current)."""
    ch = {"v_l1": v, "i_l1": i}
    if i_n is not None:
        ch["i_n"] = i_n
    return Load(Wiring.SINGLE_PHASE, ch)


def split_phase(v: Sequence[Wave], i: Sequence[Wave]) -> Load:
    """2P3W: two L-N voltages (legs 180° apart) and two line currents."""
    if len(v) != 2 or len(i) != 2:
        raise ValueError("split phase has two legs")
    return Load(Wiring.SPLIT_PHASE, {"v_l1": v[0], "v_l2": v[1], "i_l1": i[0], "i_l2": i[1]})


def four_wire(
    v: Sequence[Wave],
    i: Sequence[Wave],
    wiring: Wiring = Wiring.THREE_PHASE_4W,
    i_n: Wave | None = None,
) -> Load:
    """3P4W or 3P4W-WL: three L-N voltages and three currents (optional measured neutral)."""
    if len(v) != 3 or len(i) != 3:
        raise ValueError("three phases")
    ch = {f"v_{p}": w for p, w in zip(PHASES, v, strict=True)}
    ch |= {f"i_{p}": w for p, w in zip(PHASES, i, strict=True)}
    if i_n is not None:
        ch["i_n"] = i_n
    return Load(wiring, ch)


def three_wire(v_ln: Sequence[Wave], i1: Wave, i3: Wave, measure_i2: bool = False) -> Load:
    """3P3W from the L-N voltages of the supply (only their differences are measured).

    Only ``v_l12`` and ``v_l23`` are channels; the currents of a three-wire load sum to zero,
    so ``i_l2 = -(i_l1 + i_l3)``, given as a channel with ``measure_i2``.
    """
    ch = {"v_l12": v_ln[0] - v_ln[1], "v_l23": v_ln[1] - v_ln[2], "i_l1": i1, "i_l3": i3}
    if measure_i2:
        ch["i_l2"] = -(i1 + i3)
    return Load(Wiring.THREE_PHASE_3W, ch)


def high_leg_delta_voltages(
    v_ll: float, harmonics: Mapping[int, tuple[float, float]] | None = None
) -> tuple[Wave, Wave, Wave]:
    """L-N voltages of a high-leg (wild-leg) delta of line voltage ``v_ll``.

    The L1-L2 winding is centre-tapped to form the neutral: L1-N and L2-N are ``v_ll/2`` in
    opposition, L3-N (the high leg) is ``v_ll·√3/2`` in quadrature with them; all three
    line-to-line voltages are ``v_ll`` (a positive sequence: V12 at 0°, V23 at −120°).
    ``harmonics`` (relative to each phase's fundamental) distort every L-N voltage alike.
    """
    half = v_ll / 2.0
    high = v_ll * math.sqrt(3.0) / 2.0
    return (
        wave(half, 0.0, harmonics),
        wave(half, 180.0, rotate(harmonics, 180.0)),
        wave(high, 90.0, rotate(harmonics, 90.0)),
    )


def rotate(
    harmonics: Mapping[int, tuple[float, float]] | None, deg: float
) -> dict[int, tuple[float, float]]:
    """Harmonic phases of a wave whose fundamental is turned by ``deg`` (order h turns h·deg)."""
    return {h: (rel, ph + h * deg) for h, (rel, ph) in (harmonics or {}).items()}


def balanced_voltages(
    rms: float,
    harmonics: Mapping[int, tuple[float, float]] | None = None,
    unbalance: tuple[float, float, float] = (1.0, 1.0, 1.0),
    angles: tuple[float, float, float] = (0.0, -120.0, 120.0),
) -> tuple[Wave, ...]:
    """Three L-N voltages, positive sequence; harmonics follow each phase's rotation."""
    return tuple(
        wave(rms * k, a, rotate(harmonics, a)) for k, a in zip(unbalance, angles, strict=True)
    )


# -- feeding the engine (the only part of this module that touches it) -----------------------


@dataclass(frozen=True)
class Run:
    """The engine's output for one recording: per-window values and the aggregate."""

    windows: dict[str, Array]
    starts_s: Array
    durations_s: Array
    aggregate: dict[str, float]

    @property
    def n_windows(self) -> int:
        """Number of measurement windows."""
        return int(self.starts_s.size)


def run_meter(
    signals: Mapping[str, Array],
    rate_hz: float,
    wiring: Wiring,
    nominal_hz: float = 50.0,
    block: int | None = None,
    start_s: float = 0.0,
) -> Run:
    """Feed ``signals`` to a fresh meter in blocks of ``block`` samples (None: all at once)."""
    from emsbox.metering.aggregate import aggregate
    from emsbox.metering.meter import Meter, meter_loads
    from emsbox.testing.array_source import ArraySource

    src = ArraySource(
        dict(signals), rate_hz, wiring, nominal_frequency_hz=nominal_hz, start_s=start_s
    )
    meter = Meter(meter_loads(src.loads, src.channels), src.sample_rate_hz)
    total = len(next(iter(signals.values())))
    size = total if block is None else block
    batches = []
    done = 0
    while (blk := src.read(size)) is not None:
        done += blk.n_samples
        batches += [b for b in meter.process(blk, final=done >= total) if b.n_windows]
    if not batches:
        return Run({}, np.zeros(0), np.zeros(0), {})
    names = list(batches[0].values)
    windows = {n: np.concatenate([b.values[n] for b in batches]) for n in names}
    starts = np.concatenate([b.start_s for b in batches])
    durations = np.concatenate([b.duration_s for b in batches])
    return Run(windows, starts, durations, aggregate(batches))


# -- tolerances and comparison ------------------------------------------------------------------

# What the product promises on synthetic signals (relative for V, I, P, Q, S; absolute for the
# others). Readings near zero (Q of a resistive load, I of a balanced neutral) are held to a
# floor of 0.00001 % of the apparent power of their phase (P, Q) or of the largest value of
# their kind (V, I, S): a little above the rounding of the square root of a sum that cancels
# (~3e-8), so that any error of the method itself shows.
REL = 1e-4
THD_PP = 0.02
FREQ_HZ = 0.002
PF = 2e-4
FLOOR = 1e-7

# Worst errors seen by ``assert_matches``, per quantity kind and tag (for the accuracy docs).
WORST: dict[str, float] = {}


def kind(name: str) -> str:
    """The quantity kind of a variable: V, I, P, Q, S, PF, THD or f."""
    if name == "freq":
        return "f"
    prefix = name.split("_", 1)[0]
    return {"v": "V", "i": "I", "p": "P", "q": "Q", "s": "S", "pf": "PF", "thd": "THD"}[prefix]


def _scales(expected: Mapping[str, float]) -> dict[str, float]:
    """Per variable, the size that a near-zero reading of it is measured against."""
    largest: dict[str, float] = {}
    for name, x in expected.items():
        k = kind(name)
        largest[k] = max(largest.get(k, 0.0), abs(x))
    out = {}
    for name in expected:
        k = kind(name)
        if k in ("P", "Q"):
            out[name] = abs(expected.get("s_" + name[2:], largest.get("S", 0.0)))
        elif k in ("V", "I", "S"):
            out[name] = largest[k]
    return out


def allowed(name: str, x: float, scales: Mapping[str, float], rel: float = REL) -> float:
    """The largest deviation allowed from the expected value ``x`` of variable ``name``."""
    k = kind(name)
    if k == "THD":
        return THD_PP
    if k == "f":
        return FREQ_HZ
    if k == "PF":
        return PF
    return rel * abs(x) + FLOOR * scales.get(name, 0.0)


def record(name: str, x: float, got: Array, tag: str, scales: Mapping[str, float]) -> None:
    """Remember the worst error of a kind.

    Relative for V, I, P, Q, S readings of at least 1 % of their scale (below that the
    absolute floor applies and a relative error says nothing); absolute for the others.
    """
    k = kind(name)
    err = float(np.max(np.abs(got - x)))
    if k in ("V", "I", "P", "Q", "S"):
        if x == 0.0 or abs(x) < 1e-2 * scales.get(name, 0.0):
            return
        err /= abs(x)
    key = f"{k} [{tag}]"
    WORST[key] = max(WORST.get(key, 0.0), err)


def assert_matches(
    got: Mapping[str, Array | float],
    expected: Mapping[str, float],
    tag: str = "clean",
    rel: float = REL,
    skip: frozenset[str] | set[str] = frozenset(),
    context: str = "",
) -> None:
    """Every expected variable is present and each value (or window) is within tolerance.

    ``got`` maps names to per-window arrays or to aggregated floats. Every variable in error
    is listed in the failure message with its expected value, worst reading and tolerance.
    """
    missing = set(expected) - set(got)
    assert not missing, f"{context} missing variables: {sorted(missing)}"
    scales = _scales(expected)
    bad = []
    for name, x in sorted(expected.items()):
        if name in skip:
            continue
        values = np.atleast_1d(np.asarray(got[name], dtype=np.float64))
        assert values.size > 0, f"{context} {name}: no value"
        tol = allowed(name, x, scales, rel)
        dev = np.abs(values - x)
        record(name, x, values, tag, scales)
        if not np.all(dev <= tol):  # also catches NaN
            worst = values[int(np.nanargmax(dev))] if np.any(np.isfinite(dev)) else values[0]
            bad.append(f"{name}: expected {x:.9g}, got {worst:.9g} (tolerance ±{tol:.3g})")
    assert not bad, f"{context}\n  " + "\n  ".join(bad)
