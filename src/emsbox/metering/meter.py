"""The meter: sample blocks of many loads in, per-window readings of every load out.

All loads of a source share one sample clock. Each load keeps its own window sequence,
synchronised to its own fundamental; the harmonic analysis of every window of every load whose
windows have the same length is one matrix product. State carried from block to block: the
samples of windows not yet complete, each load's next window boundary, frequency and phase.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from emsbox.metering.frequency import advance_frequency, coarse_frequency, reference_phasor
from emsbox.metering.readings import WindowBatch
from emsbox.metering.spectrum import (
    MAX_HARMONIC,
    ComplexArray,
    dft_bins,
    fundamental,
    thd_percent,
)
from emsbox.metering.window import WindowPlan, cycles_per_window, plan_windows
from emsbox.metering.wiring import WiringMap, wiring_map
from emsbox.samples import ChannelId, FloatArray, LoadInfo, SampleBlock, Wiring

# Window frequencies are rounded to this step: fine enough that a window spans its cycles to
# within 2e-8 of one (windows laid for 1 mHz off let ~1e-6 of S leak into P and Q, which is
# 0.1 % of a P of 0.1 % of S), coarse enough that a steady grid's windows reuse one basis.
FREQUENCY_STEP_HZ = 0.000001
# A block whose windows measure a frequency this far from the one they were laid out for is
# laid out again window by window (start of a run, ramps, steps). 5 mHz of mismatch leaks
# about 0.5·h·5e-5 of harmonic h into its neighbours: far below the accuracy targets.
RESYNC_HZ = 0.005
# A P or Q within this fraction of S is taken as zero: well above the rounding of the
# computation (~1e-11 of S), far below what any meter resolves.
ROUNDING_OF_S = 1e-9
# Loads whose frequencies differ by more than this are windowed apart (different grids).
SPLIT_HZ = 0.01
# Windows laid out and measured in one pass (about a second).
PASS_WINDOWS = 5
# Samples needed before the first frequency estimate (two windows even at 45 Hz).
STARTUP_S = 0.5


@dataclass(frozen=True)
class MeterLoad:
    """A load as the meter sees it: wiring, nominal frequency and where its signals are.

    ``rows`` maps each signal name (``v_l1``, ``i_l2``, …) to its row in the sample blocks.
    """

    name: str
    wiring: Wiring
    rows: Mapping[str, int]
    nominal_frequency_hz: float = 50.0


def meter_loads(
    loads: Sequence[LoadInfo], channels: Sequence[ChannelId], split_single_phase: Sequence[str] = ()
) -> list[MeterLoad]:
    """Meter loads from a source's loads and channel layout.

    A 3P4W load named in ``split_single_phase`` becomes three 1P2W loads ``<name>_l1`` …
    ``<name>_l3`` (a three-phase main meter used as three single-phase loads).
    """
    out: list[MeterLoad] = []
    for load in loads:
        rows = {ch.signal: i for i, ch in enumerate(channels) if ch.load == load.name}
        if load.name in split_single_phase:
            if load.wiring not in (Wiring.THREE_PHASE_4W, Wiring.WILD_LEG):
                raise ValueError(f"only a 3P4W load can be split into single phases: {load.name}")
            for p in ("l1", "l2", "l3"):
                single = {"v_l1": rows[f"v_{p}"], "i_l1": rows[f"i_{p}"]}
                out.append(
                    MeterLoad(
                        f"{load.name}_{p}", Wiring.SINGLE_PHASE, single, load.nominal_frequency_hz
                    )
                )
        else:
            out.append(MeterLoad(load.name, load.wiring, rows, load.nominal_frequency_hz))
    return out


@dataclass
class _LoadState:
    """What the meter remembers of one load between blocks."""

    spec: MeterLoad
    wmap: WiringMap
    cycles: int
    rows: list[int]
    n_spectral: int
    pairs: list[tuple[int, int]]
    half_edge: float = 0.0
    window_hz: float | None = None
    next_bound: float | None = None
    first_bound: float | None = None


@dataclass
class _Group:
    """Loads of one wiring whose windows lie at the same times, measured together.

    Loads on one grid share their window timing, so their samples are weighed and analysed
    in one pass; a load whose frequency departs from the others leaves the group.
    """

    members: list[_LoadState]
    plan: WindowPlan
    window_hz: FloatArray  # the frequency each window's length and basis were made for
    sum_w: FloatArray
    gram: FloatArray  # (loads, windows, channels, channels)
    samples: FloatArray  # (loads, windows, channels, length), reused memory: valid until the
    weighted: FloatArray  # next group is weighed, like ``weighted``
    bins: ComplexArray | None = field(default=None)  # (loads, windows, spectral, bins)
    freq: FloatArray | None = field(default=None)  # measured, (loads, windows)

    @property
    def lead(self) -> _LoadState:
        """The member whose state stands for the group's timing."""
        return self.members[0]


class _Workspace:
    """Arrays reused from block to block, grown when a larger one is asked for."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
        """A C-contiguous array of ``shape`` whose content is undefined."""
        size = math.prod(shape)
        held = self._arrays.get(name)
        if held is None or held.size < size or held.dtype != dtype:
            held = np.empty(size, dtype=dtype)
            self._arrays[name] = held
        return held[:size].reshape(shape)


class Meter:
    """Turns gapless sample blocks into readings of every load, one per measurement window."""

    def __init__(self, loads: Sequence[MeterLoad], sample_rate_hz: float) -> None:
        if sample_rate_hz <= 0:
            raise ValueError("sample rate must be positive")
        self.sample_rate_hz = float(sample_rate_hz)
        self._loads: list[_LoadState] = []
        for spec in loads:
            wmap = wiring_map(spec.wiring, set(spec.rows))
            signals = list(wmap.voltages) + list(wmap.currents)
            if wmap.neutral_measured:
                signals.append("i_n")
            self._loads.append(
                _LoadState(
                    spec=spec,
                    wmap=wmap,
                    cycles=cycles_per_window(spec.nominal_frequency_hz),
                    rows=[spec.rows[s] for s in signals],
                    n_spectral=len(wmap.voltages) + len(wmap.currents),
                    pairs=wmap.product_pairs(),
                    # Edges one nominal cycle wide, the same at every boundary of the run, so
                    # that neighbouring windows' weights always complement each other exactly.
                    half_edge=sample_rate_hz / (2.0 * spec.nominal_frequency_hz),
                )
            )
        self._buffer: FloatArray | None = None
        self._work = _Workspace()
        self._buffer_start = 0
        self._received = 0
        self._t0: float | None = None

    @property
    def samples_received(self) -> int:
        """Samples per channel received so far."""
        return self._received

    def coverage(self, load: str) -> tuple[float, float] | None:
        """Sample coordinates (start, end) of the windows measured so far for ``load``."""
        for st in self._loads:
            if st.spec.name == load and st.first_bound is not None and st.next_bound is not None:
                return st.first_bound, st.next_bound
        return None

    def process(self, block: SampleBlock, final: bool = False) -> list[WindowBatch]:
        """Add a block of samples; return one batch per load with the windows it completed.

        ``final`` marks the last block of a recording: the meter then starts even if it has
        fewer samples than it would normally wait for before its first frequency estimate.
        """
        if block.sample_rate_hz != self.sample_rate_hz:
            raise ValueError("block sample rate differs from the meter's")
        if self._t0 is None:
            self._t0 = block.start_s
        if self._buffer is None or self._buffer.shape[1] == 0:
            self._buffer = np.array(block.samples, dtype=np.float64)
        else:
            self._buffer = np.concatenate((self._buffer, block.samples), axis=1)
        self._received += block.n_samples
        parts: dict[str, list[WindowBatch]] = {st.spec.name: [] for st in self._loads}
        for members in self._groups(final):
            # At most PASS_WINDOWS windows are laid out ahead of what was last measured, so a
            # long block follows a sweeping frequency as closely as a short one.
            while (group := self._prepare(members)) is not None:
                for batch in self._finish(group):
                    parts[batch.load].append(batch)
        self._trim()
        return [_joined(st.spec, parts[st.spec.name]) for st in self._loads]

    # -- per block steps -------------------------------------------------------------------

    def _groups(self, final: bool) -> list[list[_LoadState]]:
        """Loads whose next windows coincide, grouped (started loads only)."""
        if self._received < STARTUP_S * self.sample_rate_hz and not final:
            return []
        groups: dict[tuple[object, ...], list[_LoadState]] = {}
        started: list[float] = []
        for st in self._loads:
            if st.window_hz is None:
                own = self._initial_frequency(st)
                # Loads on one grid start on one estimate, so that they are measured together
                # from the first window on (their own estimates differ in the last µHz).
                near = [f for f in started if abs(f - own) < SPLIT_HZ]
                st.window_hz = min(near, key=lambda f: abs(f - own)) if near else own
                started.append(st.window_hz)
                st.next_bound = self._buffer_start + st.half_edge
            key = (
                st.spec.wiring,
                st.wmap.voltages,
                st.wmap.currents,
                st.wmap.neutral_measured,
                st.cycles,
                st.window_hz,
                st.next_bound,
            )
            groups.setdefault(key, []).append(st)
        return list(groups.values())

    def _prepare(self, members: list[_LoadState]) -> _Group | None:
        """Plan, weigh and analyse the complete windows of a group; None if there is none.

        Windows are first laid out with the last measured frequency. If a window then
        measures a frequency more than RESYNC_HZ away from the one it was laid out for (a run's
        first windows, a ramp, a step), the block is laid out again window by window with the
        measured frequencies and measured once more.
        """
        assert self._buffer is not None
        end = self._buffer_start + self._buffer.shape[1]
        lead = members[0]
        assert lead.window_hz is not None and lead.next_bound is not None
        group = self._measure(members, np.array([lead.window_hz]), lead.next_bound, end)
        if group is None:
            return None
        assert group.freq is not None
        median = np.median(group.freq, axis=0)
        measured = np.round(median / FREQUENCY_STEP_HZ) * FREQUENCY_STEP_HZ
        # The first pass of a run is always laid again, so that where a run starts does not
        # hang on the coarse first estimate (or on how its first samples were blocked).
        if lead.first_bound is None or np.max(np.abs(median - group.window_hz)) > RESYNC_HZ:
            again = self._measure(members, measured, lead.next_bound, end)
            if again is not None:
                group = again
        return group

    def _measure(
        self, members: list[_LoadState], window_hz: FloatArray, first: float, end: int
    ) -> _Group | None:
        group = self._weigh(members, window_hz, first, end)
        if group is not None:
            self._analyse_spectra(group)
            group.freq = self._frequencies(group)
        return group

    def _initial_frequency(self, st: _LoadState) -> float:
        assert self._buffer is not None
        rows = st.spec.rows
        if st.wmap.reference == ("l12",):
            sig = self._buffer[rows["v_l1"]] - self._buffer[rows["v_l2"]]
        elif st.wmap.wiring is Wiring.THREE_PHASE_3W:
            sig = self._buffer[rows["v_l12"]]
        else:
            sig = self._buffer[rows["v_l1"]]
        # Always the same span, so that the run does not depend on how samples were blocked.
        n = min(sig.size, int(STARTUP_S * self.sample_rate_hz))
        return _quantise(
            coarse_frequency(sig[:n], self.sample_rate_hz, st.spec.nominal_frequency_hz)
        )

    def _weigh(
        self, members: list[_LoadState], window_hz: FloatArray, first: float, end: int
    ) -> _Group | None:
        assert self._buffer is not None
        lead = members[0]
        lengths = lead.cycles * self.sample_rate_hz / window_hz
        plan = plan_windows(first, lengths, lead.half_edge, end, max_windows=PASS_WINDOWS)
        if plan.n_windows == 0:
            return None
        hz = lead.cycles * self.sample_rate_hz / plan.window_samples
        rows = np.array([m.rows for m in members]).ravel()
        nl, nc, nw, n = len(members), len(lead.rows), plan.n_windows, plan.length
        # Windows are contiguous runs of samples: copy each window's run of every channel of
        # every load into reused memory laid out (windows, loads, channels, length); fresh
        # arrays of this size would cost more in page faults than the copy itself.
        run = self._work.array("samples", (nw, nl * nc, n))
        # Rows in order (the usual case: the group is every channel of the source) copy as
        # plain slices, several times faster than picking rows.
        picked: slice | np.ndarray = rows
        if np.array_equal(rows, np.arange(rows[0], rows[0] + rows.size)):
            picked = slice(int(rows[0]), int(rows[0]) + rows.size)
        for j, first_sample in enumerate(plan.first - self._buffer_start):
            run[j] = self._buffer[picked, first_sample : first_sample + n]
        samples = run.reshape(nw, nl, nc, n).transpose(1, 0, 2, 3)
        w = plan.weights()
        weighted = self._work.array("weighted", (nw, nl, nc, n)).transpose(1, 0, 2, 3)
        np.multiply(samples, w[None, :, None, :], out=weighted)
        gram = _products(weighted, samples, lead.pairs)
        return _Group(members, plan, hz, w.sum(axis=1), gram, samples, weighted)

    def _analyse_spectra(self, group: _Group) -> None:
        """Subgroup bins of every spectral channel of every window of the group."""
        lead = group.lead
        ns = lead.n_spectral
        nl, nw, nc, n = group.weighted.shape
        # The weighted samples lie in memory as (windows, loads, channels, length): every
        # window's rows are one contiguous matrix. A measured neutral rides along unused
        # rather than be copied out.
        memory = group.weighted.transpose(1, 0, 2, 3)
        bins = np.empty((nw, nl * nc, 3 * MAX_HARMONIC), dtype=np.complex128)
        # One product per window length: all windows of a steady grid share one.
        lengths = group.plan.window_samples
        for length in np.unique(lengths):
            sel = np.flatnonzero(lengths == length)
            rows = memory[sel].reshape(-1, n)
            bins[sel] = dft_bins(rows, lead.cycles, float(length)).reshape(sel.size, nl * nc, -1)
        bins = bins.reshape(nw, nl, nc, -1)[:, :, :ns, :]
        group.bins = bins.reshape(nw, nl, ns, -1).transpose(1, 0, 2, 3)

    def _frequencies(self, group: _Group) -> FloatArray:
        """Frequency ``(loads, windows)`` measured within each window.

        The fundamental's phase at the centres of the window's two halves (each half weighed
        like a window of its own, so harmonics and the negative frequency cancel) differs by
        the cycles between them: the mean frequency over the window's middle, without the
        lag a comparison with the previous window would have on a ramp.
        """
        assert group.bins is not None
        plan, wm, rate = group.plan, group.lead.wmap, self.sample_rate_hz
        nv = len(wm.voltages)
        middle = 0.5 * (plan.bounds[:-1] + plan.bounds[1:])
        k = np.arange(plan.length)
        turn = np.exp(-2j * np.pi * np.outer(group.window_hz / rate, k))  # (windows, length)
        first_half = plan.weights(stop=middle) * turn
        whole_v = fundamental(group.bins[:, :, :nv, :])
        # Real and imaginary parts as two real products (a complex one would first copy the
        # samples into complex numbers).
        parts = np.stack((first_half.real, first_half.imag), axis=-1)  # (windows, length, 2)
        half = np.matmul(group.samples[:, :, :nv, :], parts[None])
        half_v = half[..., 0] + 1j * half[..., 1]
        forms = {**wm.line_to_neutral, **wm.line_to_line}
        ref_a = reference_phasor({n: half_v @ v for n, v in forms.items()}, wm.reference)
        ref_w = reference_phasor({n: whole_v @ v for n, v in forms.items()}, wm.reference)
        ref_b = ref_w - ref_a
        centre_a = 0.5 * (plan.bounds[:-1] + middle)
        centre_b = 0.5 * (middle + plan.bounds[1:])
        g = group.window_hz
        phase_a = np.angle(ref_a) + 2.0 * np.pi * g * (centre_a - plan.first) / rate
        phase_b = np.angle(ref_b) + 2.0 * np.pi * g * (centre_b - plan.first) / rate
        return advance_frequency(phase_a, phase_b, (centre_b - centre_a) / rate, g)

    def _finish(self, group: _Group) -> list[WindowBatch]:
        assert group.freq is not None
        freq = group.freq
        values = _values(group.lead.wmap, group, freq)
        assert self._t0 is not None
        plan = group.plan
        starts = self._t0 + plan.bounds[:-1] / self.sample_rate_hz
        durations = plan.window_samples / self.sample_rate_hz
        # The next windows follow the latest measured frequency: the group's median, unless a
        # load's own frequency is far from it (another grid), which then goes its own way.
        last = freq[:, -1]
        common = _quantise(float(np.median(last)))
        out = []
        for i, m in enumerate(group.members):
            own = float(last[i])
            m.window_hz = common if abs(own - common) < SPLIT_HZ else _quantise(own)
            m.next_bound = float(plan.bounds[-1])
            if m.first_bound is None:
                m.first_bound = float(plan.bounds[0])
            load_values = {name: v[i] for name, v in values.items()}
            out.append(WindowBatch(m.spec.name, m.spec.wiring, starts, durations, load_values))
        return out

    def _trim(self) -> None:
        """Drop samples no load needs any more."""
        assert self._buffer is not None
        keep_from = self._buffer_start + self._buffer.shape[1]
        for st in self._loads:
            if st.next_bound is None or st.window_hz is None:
                keep_from = self._buffer_start
                break
            keep_from = min(keep_from, int(np.floor(st.next_bound - 2.0 * st.half_edge)) - 1)
        drop = max(0, keep_from - self._buffer_start)
        if drop:
            self._buffer = self._buffer[:, drop:].copy()
            self._buffer_start += drop


def _joined(spec: MeterLoad, parts: list[WindowBatch]) -> WindowBatch:
    """One batch of a load's windows from the batches of several passes."""
    if not parts:
        return WindowBatch.empty(spec.name, spec.wiring)
    if len(parts) == 1:
        return parts[0]
    return WindowBatch(
        spec.name,
        spec.wiring,
        np.concatenate([p.start_s for p in parts]),
        np.concatenate([p.duration_s for p in parts]),
        {k: np.concatenate([p.values[k] for p in parts]) for k in parts[0].values},
    )


def _products(
    weighted: FloatArray, samples: FloatArray, pairs: list[tuple[int, int]]
) -> FloatArray:
    """Product matrix ``Σ w·x_i·x_j`` per window, computing only the entries in ``pairs``.

    Entries nobody needs stay zero. A sum per pair is several times faster here than a
    batched matrix product, whose per-call cost dominates for matrices this small.
    """
    c = samples.shape[-2]
    gram = np.zeros((*samples.shape[:-2], c, c))
    for i, j in pairs:
        gram[..., i, j] = gram[..., j, i] = np.einsum(
            "...k,...k->...", weighted[..., i, :], samples[..., j, :]
        )
    return gram


def _quantise(hz: float) -> float:
    return round(hz / FREQUENCY_STEP_HZ) * FREQUENCY_STEP_HZ


def _values(wm: WiringMap, group: _Group, freq: FloatArray) -> dict[str, FloatArray]:
    """Every instantaneous variable ``(loads, windows)`` of a group (VARIABLES.md names).

    Each kind of value is computed for all phases at once from the stacked coefficient
    vectors of the wiring map: a handful of array operations per block, whatever the load count.
    """
    assert group.bins is not None
    nv, ni = len(wm.voltages), len(wm.currents)
    g = group.gram
    sw = group.sum_w[:, None]
    gvv, gii = g[..., :nv, :nv], g[..., nv : nv + ni, nv : nv + ni]
    gvi = g[..., :nv, nv : nv + ni]
    bins_v, bins_i = group.bins[..., :nv, :], group.bins[..., nv : nv + ni, :]
    phases = list(wm.line_to_neutral)
    pairs = list(wm.line_to_line)
    volt_forms = np.array([*wm.line_to_neutral.values(), *wm.line_to_line.values()])
    amp_forms = np.array([wm.phase_currents[p] for p in phases])

    def rms(gram: FloatArray, forms: FloatArray) -> FloatArray:
        sq = np.einsum("fi,...ij,fj->...f", forms, gram, forms)
        out: FloatArray = np.sqrt(np.maximum(sq, 0.0) / sw)
        return out

    volts, amps = rms(gvv, volt_forms), rms(gii, amp_forms)
    power = np.einsum("fi,...ij,fj->...f", volt_forms[: len(phases)], gvi, amp_forms) / sw
    spec_v = np.einsum("fc,...cb->...fb", volt_forms, bins_v)
    spec_i = np.einsum("fc,...cb->...fb", amp_forms, bins_i)
    thd_v, thd_i = thd_percent(spec_v), thd_percent(spec_i)
    # Fundamental reactive power (IEEE 1459 Q1): Im(V1·conj(I1)) of the rms phasors.
    fund_v, fund_i = fundamental(spec_v[..., : len(phases), :]), fundamental(spec_i)
    reactive = 2.0 * np.imag(fund_v * np.conj(fund_i)) / sw**2
    apparent = volts[..., : len(phases)] * amps
    power, reactive = (
        _zero_below_rounding(power, apparent),
        _zero_below_rounding(reactive, apparent),
    )
    out: dict[str, FloatArray] = {}
    for k, ph in enumerate(phases):
        out[f"v_{ph}"], out[f"i_{ph}"] = volts[..., k], amps[..., k]
        out[f"p_{ph}"], out[f"q_{ph}"] = power[..., k], reactive[..., k]
        out[f"s_{ph}"] = apparent[..., k]
        out[f"pf_{ph}"] = _power_factor(power[..., k], apparent[..., k])
        out[f"thd_v_{ph}"], out[f"thd_i_{ph}"] = thd_v[..., k], thd_i[..., k]
    for k, pair in enumerate(pairs, start=len(phases)):
        out[f"v_{pair}"], out[f"thd_v_{pair}"] = volts[..., k], thd_v[..., k]
    if wm.neutral_measured:
        out["i_n"] = np.sqrt(np.maximum(g[..., -1, -1], 0.0) / group.sum_w)
    elif wm.neutral is not None:
        out["i_n"] = rms(gii, wm.neutral[None, :])[..., 0]
    out["v_ln_sys"] = volts[..., : len(phases)].mean(axis=-1)
    if pairs:
        out["v_ll_sys"] = volts[..., len(phases) :].mean(axis=-1)
    out["i_sys"] = amps.mean(axis=-1)
    if wm.aron:
        # Two-wattmeter method: the system powers come from the line voltages directly.
        av = np.array([vv for vv, _ in wm.aron])
        ai = np.array([iv for _, iv in wm.aron])
        out["p_sys"] = np.einsum("fi,...ij,fj->...", av, gvi, ai) / group.sum_w
        fv = np.einsum("fc,...c->...f", av, fundamental(bins_v))
        fi = np.einsum("fc,...c->...f", ai, fundamental(bins_i))
        out["q_sys"] = 2.0 * np.imag(fv * np.conj(fi)).sum(axis=-1) / group.sum_w**2
    else:
        out["p_sys"], out["q_sys"] = power.sum(axis=-1), reactive.sum(axis=-1)
    out["s_sys"] = apparent.sum(axis=-1)
    for name in ("p_sys", "q_sys"):
        out[name] = _zero_below_rounding(out[name], out["s_sys"])
    out["pf_sys"] = _power_factor(out["p_sys"], out["s_sys"])
    out["freq"] = freq
    return out


def _zero_below_rounding(x: FloatArray, s: FloatArray) -> FloatArray:
    """``x`` (a P or Q), with 0 where it is within the computation's rounding of ``s``.

    A P or Q that is zero in the signal comes out as ±1e-12 of S or so; exactly 0 it falls in
    the quadrant the definitions give a zero (a PF of exactly -1 in II, a pure inductance in I)
    instead of flipping between two window by window.
    """
    out: FloatArray = np.where(np.abs(x) <= ROUNDING_OF_S * s, 0.0, x)
    return out


def _power_factor(p: FloatArray, s: FloatArray) -> FloatArray:
    """P/S, with sign of P; 1 where there is no apparent power (no load)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pf = np.where(s > 0.0, p / s, 1.0)
    out: FloatArray = np.clip(pf, -1.0, 1.0)
    return out
