"""Which COMTRADE analog channel carries which of our signals, and in what unit.

A channel is matched, best first, by

1. its id equal to a signal name (``v_l1``, ``i_n``, ...; case and surrounding blanks ignored);
2. its id following a common convention: ``V``/``U`` (voltage) or ``I`` (current) followed by
   a phase designator, ignoring case, blanks, ``_``, ``-`` and ``.``: ``VA``, ``Va``, ``UL1``,
   ``U1``, ``V1``, ``VAN`` → v_l1; ``VAB``, ``UL12``, ``V12`` → v_l12; ``VBC``, ``UL23`` →
   v_l23; ``IA``, ``IL1``, ``I1`` → i_l1; ``IN``, ``I_N`` → i_n (``I0``/``3I0`` are residual
   currents, not the neutral, and stay unmatched);
3. its phase field (``ph``: ``A``, ``L1``, ``1``, ``AB``, ``N``, ...) together with its unit
   (volts or amperes), when the id says nothing.

Channels of levels 2 and 3 must have a unit of the right kind (V or A, with an optional
``k``, ``M``, ``m`` or ``u`` prefix, or no unit). Two channels matching the same needed
signal at the same level are ambiguous and refused: renaming one to the signal name settles it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from emsbox.samples import SIGNALS, Wiring
from emsbox.sources.recorded import recording_error, signals_for

# Phase designators after the V/U/I prefix or in the ph field, by the suffix of our names.
_DESIGNATORS: dict[str, tuple[str, ...]] = {
    "l1": ("A", "L1", "1", "AN", "L1N", "1N"),
    "l2": ("B", "L2", "2", "BN", "L2N", "2N"),
    "l3": ("C", "L3", "3", "CN", "L3N", "3N"),
    "l12": ("AB", "L1L2", "L12", "12"),
    "l23": ("BC", "L2L3", "L23", "23"),
    "n": ("N",),
}
_SUFFIX_OF_DESIGNATOR = {d: suffix for suffix, ds in _DESIGNATORS.items() for d in ds}
_PREFIX_OF_KIND = {"V": "v", "U": "v", "I": "i"}
_UNIT_PREFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "m": 1e-3, "u": 1e-6, "µ": 1e-6}
_BASE_UNIT = {"v": "V", "i": "A"}

# Match levels, best first.
EXACT, BY_ID, BY_PHASE = 0, 1, 2


@dataclass(frozen=True)
class AnalogChannel:
    """What the configuration says of one analog channel."""

    number: int
    ident: str
    phase: str
    unit: str
    primary: float = 1.0
    secondary: float = 1.0
    ps: str = "P"

    def describe(self) -> str:
        """How messages name the channel: number and id."""
        return f"channel {self.number} '{self.ident.strip()}'"


def signal_match(channel: AnalogChannel) -> tuple[str, int] | None:
    """The signal a channel seems to carry and the level of that match, or None."""
    ident = channel.ident.strip().lower()
    if ident in SIGNALS:
        return ident, EXACT
    compact = _compact(channel.ident)
    if compact[:1] in _PREFIX_OF_KIND:
        signal = _signal(_PREFIX_OF_KIND[compact[:1]], compact[1:])
        if signal is not None and unit_scale(channel.unit, signal) is not None:
            return signal, BY_ID
    kind = _kind_of_unit(channel.unit)
    if kind is not None:
        signal = _signal(kind, _compact(channel.phase))
        if signal is not None:
            return signal, BY_PHASE
    return None


def unit_scale(unit: str, signal: str) -> float | None:
    """Factor from ``unit`` to V (or A) for ``signal``; None if the unit does not fit it.

    No unit at all is taken as V or A.
    """
    unit = unit.strip()
    if not unit:
        return 1.0
    base = _BASE_UNIT[signal[0]]
    if unit[-1].upper() != base:
        return None
    return _UNIT_PREFIXES.get(unit[:-1])


def assign_signals(
    path: Path | str, channels: Sequence[AnalogChannel], wiring: Wiring
) -> dict[str, int]:
    """Map each signal the wiring uses to the index of the channel carrying it."""
    candidates: dict[str, list[tuple[int, int]]] = {}
    for index, channel in enumerate(channels):
        match = signal_match(channel)
        if match is not None:
            candidates.setdefault(match[0], []).append((match[1], index))
    listing = (
        "its analog channels: " + ", ".join(_listing_entry(c) for c in channels)
        if channels
        else "it has no analog channels"
    )
    wanted = signals_for(path, wiring, candidates, listing)
    return {signal: _best(path, signal, candidates[signal], channels) for signal in wanted}


def _best(
    path: Path | str,
    signal: str,
    candidates: list[tuple[int, int]],
    channels: Sequence[AnalogChannel],
) -> int:
    top = min(level for level, _ in candidates)
    indexes = [index for level, index in candidates if level == top]
    if len(indexes) > 1:
        which = " and ".join(channels[i].describe() for i in indexes)
        raise recording_error(
            path,
            f"{which} {'both' if len(indexes) == 2 else 'all'} look like {signal}; "
            f"rename the one to use to '{signal}' in the configuration",
        )
    channel = channels[indexes[0]]
    if unit_scale(channel.unit, signal) is None:
        raise recording_error(
            path,
            f"{channel.describe()} has unit '{channel.unit.strip()}', which does not fit "
            f"{signal} (expected {_BASE_UNIT[signal[0]]} with an optional k, M, m or u prefix)",
        )
    return indexes[0]


def _listing_entry(channel: AnalogChannel) -> str:
    unit = channel.unit.strip()
    return f"{channel.ident.strip()} [{unit}]" if unit else channel.ident.strip()


def _compact(text: str) -> str:
    """Upper case without blanks, underscores, hyphens and dots."""
    return "".join(c for c in text.upper() if not c.isspace() and c not in "_-.")


def _signal(kind: str, designator: str) -> str | None:
    """Our name for a voltage ('v') or current ('i') of a phase designator, if we have one."""
    suffix = _SUFFIX_OF_DESIGNATOR.get(designator)
    if suffix is None:
        return None
    name = f"{kind}_{suffix}"
    return name if name in SIGNALS else None


def _kind_of_unit(unit: str) -> str | None:
    """'v' for a unit of volts, 'i' for amperes, else None (no unit says nothing)."""
    for kind in _BASE_UNIT:
        if unit.strip() and unit_scale(unit, f"{kind}_") is not None:
            return kind
    return None
