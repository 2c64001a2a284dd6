"""The vocabulary of measured and counted values (shared VARIABLES.md) as data.

Every name here is used unchanged in code, storage, protocols and documentation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What sort of value a variable is."""

    INSTANTANEOUS = "instantaneous"
    ENERGY = "energy"
    HOURS = "hours"
    STATE = "state"


@dataclass(frozen=True)
class Variable:
    """One named quantity: its unit, kind, phase (if any) and meaning."""

    name: str
    unit: str
    kind: Kind
    description: str
    phase: str | None = None


def _phases(
    stem: str, unit: str, kind: Kind, what: str, suffixes: tuple[str, ...]
) -> list[Variable]:
    return [Variable(f"{stem}_{p}", unit, kind, f"{what} {p.upper()}", p) for p in suffixes]


_L = ("l1", "l2", "l3")
_LL = ("l12", "l23", "l31")
_I = Kind.INSTANTANEOUS
_E = Kind.ENERGY
_H = Kind.HOURS

INSTANTANEOUS: tuple[Variable, ...] = tuple(
    [
        *_phases("v", "V", _I, "Phase-to-neutral TRMS voltage", _L),
        Variable("v_ln_sys", "V", _I, "Mean of the L-N voltages in use"),
        *_phases("v", "V", _I, "Line-to-line TRMS voltage", _LL),
        Variable("v_ll_sys", "V", _I, "Mean of the L-L voltages in use"),
        *_phases("i", "A", _I, "Phase TRMS current", _L),
        Variable("i_n", "A", _I, "Neutral TRMS current", "n"),
        Variable("i_sys", "A", _I, "Mean of the phase currents in use"),
        *_phases("p", "W", _I, "Active power", _L),
        Variable("p_sys", "W", _I, "System active power (sum of phases)"),
        *_phases("q", "var", _I, "Fundamental reactive power", _L),
        Variable("q_sys", "var", _I, "System fundamental reactive power (sum of phases)"),
        *_phases("s", "VA", _I, "Apparent power", _L),
        Variable("s_sys", "VA", _I, "System apparent power (arithmetic sum of phases)"),
        *_phases("pf", "", _I, "Power factor", _L),
        Variable("pf_sys", "", _I, "System power factor"),
        Variable("freq", "Hz", _I, "Fundamental frequency"),
        *_phases("thd_i", "%", _I, "Current THD (harmonics 2-31)", _L),
        *_phases("thd_v", "%", _I, "L-N voltage THD (harmonics 2-31)", _L),
        *_phases("thd_v", "%", _I, "L-L voltage THD (harmonics 2-31)", _LL),
    ]
)


def _energy(unit: str, stem: str, what: str) -> list[Variable]:
    out: list[Variable] = []
    for direction, label in (("imp", "imported"), ("exp", "exported")):
        out.append(Variable(f"{stem}_{direction}", unit, _E, f"{what} {label}, total"))
        out += _phases(f"{stem}_{direction}", unit, _E, f"{what} {label},", _L)
        out.append(Variable(f"{stem}_{direction}_partial", unit, _E, f"{what} {label}, partial"))
    return out


ENERGY: tuple[Variable, ...] = tuple(
    [
        *_energy("kWh", "kwh", "Active energy"),
        Variable("kwh_imp_t1", "kWh", _E, "Active energy imported in tariff 1"),
        Variable("kwh_imp_t2", "kWh", _E, "Active energy imported in tariff 2"),
        *[Variable(f"kwh_q{q}", "kWh", _E, f"Active energy in quadrant {q}") for q in range(1, 5)],
        *_energy("kvarh", "kvarh", "Reactive energy"),
        *[
            Variable(f"kvarh_q{q}", "kvarh", _E, f"Reactive energy in quadrant {q}")
            for q in range(1, 5)
        ],
        Variable("kvah", "kVAh", _E, "Apparent energy, total"),
        Variable("kvah_partial", "kVAh", _E, "Apparent energy, partial"),
        *[
            Variable(f"kvah_q{q}", "kVAh", _E, f"Apparent energy in quadrant {q}")
            for q in range(1, 5)
        ],
    ]
)

HOURS: tuple[Variable, ...] = (
    Variable("hours_imp", "h", _H, "Time importing active energy, total"),
    Variable("hours_imp_partial", "h", _H, "Time importing active energy, partial"),
    Variable("hours_exp", "h", _H, "Time exporting active energy, total"),
    Variable("hours_exp_partial", "h", _H, "Time exporting active energy, partial"),
    Variable("hours_on", "h", _H, "Total time the meter has been measuring"),
)

STATE: tuple[Variable, ...] = (
    Variable("tariff", "", Kind.STATE, "Active tariff, 1 or 2"),
    Variable("partial_running", "", Kind.STATE, "Whether the partial counters are counting"),
)

ALL: tuple[Variable, ...] = INSTANTANEOUS + ENERGY + HOURS + STATE
BY_NAME: dict[str, Variable] = {v.name: v for v in ALL}
COUNTER_NAMES: tuple[str, ...] = tuple(v.name for v in ENERGY + HOURS)
