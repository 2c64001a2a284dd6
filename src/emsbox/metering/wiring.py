"""Wiring systems as linear maps from measured channels to phase quantities.

Every quantity of a load is a linear combination of its measured voltage or current channels:
line-to-line voltages are differences of line-to-neutral ones, a 3P3W load's line-to-neutral
voltages refer to a virtual star point (the three of them sum to zero), and a neutral current
that is not measured is the sum of the phase currents. Keeping these as coefficient vectors lets
RMS values and powers come from one weighted product matrix of the measured channels, and
spectra from linear combinations of the measured spectra: nothing is computed twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emsbox.samples import OPTIONAL_SIGNALS, REQUIRED_SIGNALS, FloatArray, Wiring

Vector = FloatArray

_LN = ("l1", "l2", "l3")
_LL = ("l12", "l23", "l31")


@dataclass(frozen=True)
class WiringMap:
    """How a load's phase quantities derive from its measured channels.

    Voltage vectors apply to ``voltages`` (the measured voltage signals, in order), current
    vectors to ``currents`` (the measured phase-current signals). ``aron`` holds the
    (voltage vector, current vector) pairs whose products add up to the system active power
    of a three-wire system (two-wattmeter method); it is empty where the system power is the
    sum of the phase powers.
    """

    wiring: Wiring
    voltages: tuple[str, ...]
    currents: tuple[str, ...]
    neutral_measured: bool
    line_to_neutral: dict[str, Vector]
    line_to_line: dict[str, Vector]
    phase_currents: dict[str, Vector]
    neutral: Vector | None
    aron: tuple[tuple[Vector, Vector], ...]
    reference: tuple[str, ...]

    @property
    def phases(self) -> tuple[str, ...]:
        """The phases in use (``l1`` … ``l3``)."""
        return tuple(self.line_to_neutral)

    def product_pairs(self) -> list[tuple[int, int]]:
        """Pairs (i, j), i <= j, of measured channels whose weighted products some value needs.

        Channels are numbered voltages first, then currents, then a measured neutral. Only
        these entries of the product matrix are computed: a 3P4W load with a measured neutral
        needs 13 of its 28.
        """
        nv, ni = len(self.voltages), len(self.currents)
        forms: list[tuple[Vector, Vector, int, int]] = []
        for vec in [*self.line_to_neutral.values(), *self.line_to_line.values()]:
            forms.append((vec, vec, 0, 0))
        for ph, vec in self.phase_currents.items():
            forms.append((vec, vec, nv, nv))
            forms.append((self.line_to_neutral[ph], vec, 0, nv))
        if self.neutral is not None:
            forms.append((self.neutral, self.neutral, nv, nv))
        for vv, iv in self.aron:
            forms.append((vv, iv, 0, nv))
        pairs = {(nv + ni, nv + ni)} if self.neutral_measured else set()
        for a, b, oa, ob in forms:
            for i in np.flatnonzero(a):
                for j in np.flatnonzero(b):
                    x, y = int(i) + oa, int(j) + ob
                    pairs.add((min(x, y), max(x, y)))
        return sorted(pairs)


def _unit(n: int, i: int) -> Vector:
    v = np.zeros(n)
    v[i] = 1.0
    return v


def wiring_map(wiring: Wiring, available: frozenset[str] | set[str]) -> WiringMap:
    """Build the map of ``wiring`` given the signals a source provides.

    Raises ValueError naming the missing signals when a required one is absent.
    """
    missing = [s for s in REQUIRED_SIGNALS[wiring] if s not in available]
    if missing:
        raise ValueError(f"{wiring.value} wiring needs channels {', '.join(missing)}")
    optional = {s for s in OPTIONAL_SIGNALS[wiring] if s in available}
    neutral_measured = "i_n" in optional
    if wiring is Wiring.THREE_PHASE_3W:
        return _three_wire("i_l2" in optional)
    phases = {
        Wiring.SINGLE_PHASE: _LN[:1],
        Wiring.SPLIT_PHASE: _LN[:2],
        Wiring.THREE_PHASE_4W: _LN,
        Wiring.WILD_LEG: _LN,
    }[wiring]
    n = len(phases)
    voltages = tuple(f"v_{p}" for p in phases)
    currents = tuple(f"i_{p}" for p in phases)
    ln = {p: _unit(n, i) for i, p in enumerate(phases)}
    ll: dict[str, Vector] = {}
    if n == 2:
        ll["l12"] = ln["l1"] - ln["l2"]
    elif n == 3:
        for pair in _LL:
            a, b = f"l{pair[1]}", f"l{pair[2]}"
            ll[pair] = ln[a] - ln[b]
    pc = {p: _unit(n, i) for i, p in enumerate(phases)}
    return WiringMap(
        wiring=wiring,
        voltages=voltages,
        currents=currents,
        neutral_measured=neutral_measured,
        line_to_neutral=ln,
        line_to_line=ll,
        phase_currents=pc,
        neutral=None if neutral_measured else np.ones(n),
        aron=(),
        reference=phases if n != 2 else ("l12",),
    )


def _three_wire(i_l2_measured: bool) -> WiringMap:
    """3P3W: two measured line voltages (L1-L2, L2-L3), currents of L1 and L3 (and L2)."""
    v12, v23 = _unit(2, 0), _unit(2, 1)
    v31 = -(v12 + v23)
    # Virtual star: the L-N voltages sum to zero, so v1 = (v12 - v31) / 3 and so on.
    ln = {"l1": (v12 - v31) / 3.0, "l2": (v23 - v12) / 3.0, "l3": (v31 - v23) / 3.0}
    currents = ("i_l1", "i_l3", "i_l2") if i_l2_measured else ("i_l1", "i_l3")
    n = len(currents)
    i1, i3 = _unit(n, 0), _unit(n, 1)
    i2 = _unit(n, 2) if i_l2_measured else -(i1 + i3)
    # Two-wattmeter (Aron) method with L2 as the common reference: P = v12·i1 + v32·i3.
    aron = ((v12, i1), (-v23, i3))
    return WiringMap(
        wiring=Wiring.THREE_PHASE_3W,
        voltages=("v_l12", "v_l23"),
        currents=currents,
        neutral_measured=False,
        line_to_neutral=ln,
        line_to_line={"l12": v12, "l23": v23, "l31": v31},
        phase_currents={"l1": i1, "l2": i2, "l3": i3},
        neutral=None,
        aron=aron,
        reference=_LN,
    )
