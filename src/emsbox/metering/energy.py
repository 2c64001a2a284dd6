"""Energy and hour counters of one load, integrated window by window (shared VARIABLES.md).

Every counter is the sum, over the measurement windows, of a non-negative quantity times the
window's true duration: |P|·dt, |Q|·dt or S·dt into the counter its sign or quadrant selects,
dt into the hour counters. Energy integrates every window (there is no creep cut-off); only
the hour counters compare |P| with the starting threshold.

Precision. A counter is kept as an integer number of millionths of its unit (``micro``: mWh,
mvarh, mVAh, µh) plus the not yet carried fraction of one millionth (``residue``, in [0, 1)).
Each batch adds its increment, in millionths, to the residue and carries the whole part into
the integer. The only rounding left is that of ``residue + increment``: at most half an ulp of
the batch's own increment, never of the counter's size. A naive float64 kWh counter instead
rounds every addition to the ulp of a large total (1.2e-10 kWh at 876 000 kWh), which over a
year of 0.2 s windows (1.6e8 additions) could drift by 0.01 kWh; here the carrying adds less
than 1e-10 kWh of error over such a year. The representation is also exactly monotonic (a
float addition of a non-negative increment never decreases, the carry is exact, and the
reported value is a correctly rounded function of micro + residue), so a counter never steps
back by an ulp, and it round-trips through JSON exactly (integers, shortest-repr floats).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from emsbox.metering.readings import WindowBatch
from emsbox.metering.wiring import wiring_map
from emsbox.samples import REQUIRED_SIGNALS, FloatArray, Wiring
from emsbox.variables import BY_NAME, COUNTER_NAMES, Kind

BoolArray = npt.NDArray[np.bool_]

# Counters hold integer millionths of their unit; these are the SI amounts (W·s, var·s, VA·s,
# s) making up one millionth: 1 mWh = 3.6 W·s, 1 µh = 3.6 ms.
MICRO_PER_UNIT = 1_000_000
_ENERGY_SI_PER_MICRO = 3.6
_HOURS_SI_PER_MICRO = 0.0036
# A single batch adding more than 2**53 millionths (9e9 kWh) is corrupt input, and would
# also lose the exactness of the carry.
_MAX_STEP_MICRO = 2.0**53

# The starting current of VARIABLES.md (20 mA) that sets the default starting threshold.
STARTING_CURRENT_A = 0.02

TARIFFS = (1, 2)
_TARIFF_COUNTER = {t: f"kwh_imp_t{t}" for t in TARIFFS}
_QUADRANTS = (1, 2, 3, 4)
# Per-phase counters: the instantaneous value whose sign splits import from export, and stem.
_STEM_OF = {"p": "kwh", "q": "kvarh"}

_PHASES: dict[Wiring, tuple[str, ...]] = {
    w: wiring_map(w, frozenset(REQUIRED_SIGNALS[w])).phases for w in Wiring
}


def phases_in_use(wiring: Wiring) -> tuple[str, ...]:
    """The phases (``l1`` … ``l3``) whose per-phase counters exist for ``wiring``."""
    return _PHASES[wiring]


def counter_names(wiring: Wiring) -> tuple[str, ...]:
    """Names of every energy and hour counter of a load with ``wiring``, in VARIABLES.md order."""
    phases = _PHASES[wiring]
    return tuple(n for n in COUNTER_NAMES if BY_NAME[n].phase in (None, *phases))


def partial_names(wiring: Wiring) -> tuple[str, ...]:
    """Names of the partial counters (those that start, stop and reset)."""
    return tuple(n for n in counter_names(wiring) if n.endswith("_partial"))


def default_start_threshold_w(wiring: Wiring, nominal_v_ln: float) -> float:
    """The power at the 20 mA starting current in every phase in use at nominal L-N voltage."""
    return STARTING_CURRENT_A * nominal_v_ln * len(_PHASES[wiring])


def _si_per_micro(name: str) -> float:
    return _HOURS_SI_PER_MICRO if BY_NAME[name].kind is Kind.HOURS else _ENERGY_SI_PER_MICRO


def _reported(micro: npt.NDArray[np.int64], residue: FloatArray) -> FloatArray:
    # Both steps are monotonic roundings of micro + residue, so reported values never decrease
    # while micro + residue grows.
    return (micro.astype(np.float64) + residue) / MICRO_PER_UNIT


class CounterState(BaseModel):
    """Everything needed to resume a load's counters exactly: saved, restored, compared.

    ``micro[name]`` is the counter in millionths of its unit and ``residue[name]`` the fraction
    of one millionth not yet carried, in [0, 1); ``counters()`` gives the values in their units.
    ``sequence`` grows with every change, so a store can refuse to rewind.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    wiring: Wiring
    sequence: int = Field(ge=0)
    partial_running: bool
    micro: dict[str, int]
    residue: dict[str, float]

    @model_validator(mode="after")
    def _check(self) -> Self:
        names = set(counter_names(self.wiring))
        for field, values in (("micro", self.micro), ("residue", self.residue)):
            if set(values) != names:
                missing, extra = sorted(names - set(values)), sorted(set(values) - names)
                raise ValueError(
                    f"{field} must hold exactly the {self.wiring.value} counters"
                    f" (missing {missing}, unexpected {extra})"
                )
        if any(v < 0 for v in self.micro.values()):
            raise ValueError("micro counts must not be negative")
        if not all(0.0 <= r < 1.0 for r in self.residue.values()):
            raise ValueError("residues must lie in [0, 1)")
        return self

    def counters(self) -> dict[str, float]:
        """Every counter in its unit (kWh, kvarh, kVAh, h)."""
        names = counter_names(self.wiring)
        micro = np.array([self.micro[n] for n in names], dtype=np.int64)
        residue = np.array([self.residue[n] for n in names], dtype=np.float64)
        return dict(zip(names, _reported(micro, residue).tolist(), strict=True))

    def to_json(self) -> str:
        """The state as JSON text (exact: integers and shortest-repr floats)."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> CounterState:
        """Parse and validate a state written by ``to_json``."""
        return cls.model_validate_json(text)


class EnergyCounters:
    """The energy and hour counters of one load, as VARIABLES.md defines them.

    A new instance starts at zero with the partial counters running: a new meter counts
    partials from installation until someone stops them.
    """

    def __init__(self, wiring: Wiring, start_threshold_w: float) -> None:
        if not (np.isfinite(start_threshold_w) and start_threshold_w >= 0.0):
            raise ValueError(f"start threshold must be finite and >= 0 W, got {start_threshold_w}")
        self._wiring = wiring
        self._threshold = float(start_threshold_w)
        self._phases = _PHASES[wiring]
        self._names = counter_names(wiring)
        self._index = {n: i for i, n in enumerate(self._names)}
        self._partial_names = partial_names(wiring)
        self._partial_idx = np.array([self._index[n] for n in self._partial_names])
        self._si_per_micro = np.array([_si_per_micro(n) for n in self._names])
        # (phase, "p" or "q") for every per-phase value the counters need.
        self._phase_values = [(ph, x) for ph in self._phases for x in _STEM_OF]
        self._required = ("p_sys", "q_sys", "s_sys", *(f"{x}_{ph}" for ph, x in self._phase_values))
        self._micro = np.zeros(len(self._names), dtype=np.int64)
        self._residue = np.zeros(len(self._names), dtype=np.float64)
        self._partial_running = True
        self._sequence = 0

    @classmethod
    def from_state(cls, state: CounterState, start_threshold_w: float) -> EnergyCounters:
        """Resume exactly where ``state`` (from ``state()``) left off."""
        counters = cls(state.wiring, start_threshold_w)
        counters._micro = np.array([state.micro[n] for n in counters._names], dtype=np.int64)
        counters._residue = np.array([state.residue[n] for n in counters._names])
        counters._partial_running = state.partial_running
        counters._sequence = state.sequence
        return counters

    @property
    def wiring(self) -> Wiring:
        """The load's wiring system, which decides the per-phase counters."""
        return self._wiring

    @property
    def start_threshold_w(self) -> float:
        """|P| above which the load counts as importing or exporting (hour counters)."""
        return self._threshold

    @property
    def names(self) -> tuple[str, ...]:
        """The counters this load has."""
        return self._names

    @property
    def sequence(self) -> int:
        """Number of changes so far (integrations, partial transitions); never decreases."""
        return self._sequence

    @property
    def partial_running(self) -> bool:
        """Whether the partial counters are counting."""
        return self._partial_running

    def integrate(
        self, batch: WindowBatch, tariff: int, partial_running: bool | None = None
    ) -> None:
        """Add a batch of consecutive windows, all in ``tariff`` (1 or 2).

        ``partial_running``, when given, starts or stops the partial counters before the
        batch (as ``start_partial``/``stop_partial``). Raises ValueError on a batch of another
        wiring, a missing or non-finite value, a negative duration or apparent power.
        """
        if batch.wiring is not self._wiring:
            raise ValueError(
                f"batch of load {batch.load!r} is {batch.wiring.value}, counters are"
                f" {self._wiring.value}"
            )
        if partial_running is True:
            self.start_partial()
        elif partial_running is False:
            self.stop_partial()
        self._integrate_arrays(batch.values, batch.duration_s, tariff)

    def add_window(self, values: Mapping[str, float], duration_s: float, tariff: int) -> None:
        """Add one window (e.g. the tail of a recording); same as a one-window batch."""
        missing = [n for n in self._required if n not in values]
        if missing:
            raise ValueError(f"window lacks {', '.join(missing)}")
        arrays = {n: np.array([values[n]], dtype=np.float64) for n in self._required}
        self._integrate_arrays(arrays, np.array([duration_s], dtype=np.float64), tariff)

    def start_partial(self) -> None:
        """Let the partial counters count (no-op when they already do)."""
        if not self._partial_running:
            self._partial_running = True
            self._sequence += 1

    def stop_partial(self) -> None:
        """Freeze the partial counters; totals keep counting (no-op when already stopped)."""
        if self._partial_running:
            self._partial_running = False
            self._sequence += 1

    def reset_partial(self) -> None:
        """Zero every partial counter; running or stopped stays as it was."""
        self._micro[self._partial_idx] = 0
        self._residue[self._partial_idx] = 0.0
        self._sequence += 1

    def snapshot(self) -> dict[str, float]:
        """Every counter of the load in its unit (kWh, kvarh, kVAh, h)."""
        return dict(zip(self._names, _reported(self._micro, self._residue).tolist(), strict=True))

    def state(self) -> CounterState:
        """The exact state, to save and later resume with ``from_state``."""
        return CounterState(
            wiring=self._wiring,
            sequence=self._sequence,
            partial_running=self._partial_running,
            micro=dict(zip(self._names, self._micro.tolist(), strict=True)),
            residue=dict(zip(self._names, self._residue.tolist(), strict=True)),
        )

    def _integrate_arrays(
        self, values: Mapping[str, FloatArray], duration_s: FloatArray, tariff: int
    ) -> None:
        """The one integration path shared by ``integrate`` and ``add_window``."""
        if tariff not in _TARIFF_COUNTER:
            raise ValueError(f"tariff must be 1 or 2, got {tariff}")
        n = duration_s.shape[0]
        if n == 0:
            return
        self._check_present(values, n)
        p, q, dt = values["p_sys"], values["q_sys"], duration_s
        # Rows |P|·dt, |Q|·dt, S·dt, dt of the system; rows P·dt, Q·dt of each phase.
        system = np.stack([p * dt, q * dt, values["s_sys"] * dt, dt])
        np.abs(system[:2], out=system[:2])
        phases = np.stack([values[f"{x}_{ph}"] * dt for ph, x in self._phase_values])
        self._check_finite_and_signs(values, dt, system, phases)
        si = self._increments_si(p, q, system, phases, tariff)
        self._accumulate(np.array([si[name] for name in self._names]) / self._si_per_micro)
        self._sequence += 1

    def _check_present(self, values: Mapping[str, FloatArray], n: int) -> None:
        missing = [name for name in self._required if name not in values]
        if missing:
            raise ValueError(f"batch lacks {', '.join(missing)}")
        for name in self._required:
            if values[name].shape != (n,):
                raise ValueError(f"{name} has shape {values[name].shape}, expected ({n},)")

    def _check_finite_and_signs(
        self,
        values: Mapping[str, FloatArray],
        dt: FloatArray,
        system: FloatArray,
        phases: FloatArray,
    ) -> None:
        # The products hold every input (a NaN or inf anywhere makes them non-finite): one
        # pass over them instead of one per input; the inputs are searched only to name one.
        if not (np.isfinite(system).all() and np.isfinite(phases).all()):
            named = {"duration_s": dt, **{name: values[name] for name in self._required}}
            bad = [name for name, x in named.items() if not np.isfinite(x).all()]
            raise ValueError(f"{', '.join(bad) or 'products'} hold non-finite values")
        # Negative time or apparent power would make counters run backwards.
        if dt.min() < 0.0:
            raise ValueError("duration_s holds negative durations")
        if values["s_sys"].min() < 0.0:
            raise ValueError("s_sys holds negative apparent powers")

    def _increments_si(
        self, p: FloatArray, q: FloatArray, system: FloatArray, phases: FloatArray, tariff: int
    ) -> dict[str, float]:
        """Each counter's increase over the batch in W·s, var·s, VA·s or s."""
        # One product (quantity × window) @ (window × class) gives every system sum: |P|·dt,
        # |Q|·dt, S·dt and dt per quadrant, and dt while importing or exporting. Its error is
        # relative to the batch's own sums (≤ n·eps for n non-negative terms), never to the
        # size of the counters, which _accumulate takes care of.
        # "Exceeds" the threshold: a load exactly at it is neither importing nor exporting.
        classes = np.stack([*_quadrant_masks(p, q), p > self._threshold, p < -self._threshold])
        kwh, kvarh, kvah, hours = (system @ classes.astype(np.float64).T).tolist()
        inc = dict.fromkeys(self._names, 0.0)
        for stem, by_quadrant in (("kwh", kwh), ("kvarh", kvarh), ("kvah", kvah)):
            for k in _QUADRANTS:
                inc[f"{stem}_q{k}"] = by_quadrant[k - 1]
        # Import and export follow from the quadrants: P ≥ 0 in I and IV, Q ≥ 0 in I and II
        # (a zero P or Q adds nothing either way).
        inc["kwh_imp"], inc["kwh_exp"] = kwh[0] + kwh[3], kwh[1] + kwh[2]
        inc["kvarh_imp"], inc["kvarh_exp"] = kvarh[0] + kvarh[1], kvarh[2] + kvarh[3]
        inc["kvah"] = sum(kvah[:4])
        inc[_TARIFF_COUNTER[tariff]] = inc["kwh_imp"]
        # The quadrants partition the windows, so their times add up to the measured time.
        inc["hours_on"] = sum(hours[:4])
        inc["hours_imp"], inc["hours_exp"] = hours[4], hours[5]
        # Each phase is split by the sign of its own P or Q, not by the system's.
        imported = np.maximum(phases, 0.0).sum(axis=1).tolist()
        exported = (-np.minimum(phases, 0.0).sum(axis=1)).tolist()
        for (ph, x), imp, exp in zip(self._phase_values, imported, exported, strict=True):
            stem = _STEM_OF[x]
            inc[f"{stem}_imp_{ph}"], inc[f"{stem}_exp_{ph}"] = imp, exp
        if self._partial_running:
            for name in self._partial_names:
                inc[name] = inc[name.removesuffix("_partial")]
        return inc

    def _accumulate(self, increment_micro: FloatArray) -> None:
        if np.any(increment_micro > _MAX_STEP_MICRO):
            raise ValueError("a batch increment exceeds 2**53 millionths: implausible input")
        # Non-negative increment onto a residue in [0, 1): the sum is rounded once, relative
        # to the increment's size; floor and subtraction are exact.
        total = self._residue + increment_micro
        whole = np.floor(total)
        self._residue = total - whole
        self._micro += whole.astype(np.int64)


def _quadrant_masks(p: FloatArray, q: FloatArray) -> tuple[BoolArray, ...]:
    """Windows in quadrants I…IV (IEC 62053-23): I P≥0 Q≥0, II P<0 Q≥0, III P<0 Q<0, IV P≥0 Q<0."""
    p_pos, q_pos = p >= 0.0, q >= 0.0
    return (p_pos & q_pos, ~p_pos & q_pos, ~p_pos & ~q_pos, p_pos & ~q_pos)
