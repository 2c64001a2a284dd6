"""The pulse output: pulses proportional to an energy counter, none lost and none added.

The number of pulses owed is computed from the counter itself, ``floor((E − E₀) · k)`` for a
constant of k pulses per kWh, never by adding up increments, so rounding cannot make the count
drift over years. A pulse is on for ``width_s``, then off for at least ``gap_s``; when the
energy comes faster than that allows (more than ``max_power_kw``), the pulses owed wait and
follow at the highest rate, so the count still comes out equal to the energy times the
constant once the power drops. A counter that goes down (replaced, reset) is taken as a new
start: the pulses owed so far are kept, the fraction of a pulse not yet reached is dropped.

Pure: the caller gives the time and the counter at each step and switches the physical output
to what ``step`` returns. ``state``/``from_state`` carry the count across restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PulseState:
    """What a restart needs: the counter at the start, the pulses owed before it, and the
    pulses given so far."""

    base_kwh: float
    base_pulses: int
    emitted: int


class PulseOutput:
    """Pulses for an energy counter at ``pulses_per_kwh``, each ``width_s`` long."""

    def __init__(
        self,
        pulses_per_kwh: float,
        width_s: float,
        gap_s: float | None = None,
        normally_closed: bool = False,
        state: PulseState | None = None,
    ) -> None:
        if not (pulses_per_kwh > 0.0 and math.isfinite(pulses_per_kwh)):
            raise ValueError("pulses_per_kwh must be a positive number")
        if not (width_s > 0.0 and math.isfinite(width_s)):
            raise ValueError("width_s must be a positive number")
        self.pulses_per_kwh = pulses_per_kwh
        self.width_s = width_s
        self.gap_s = width_s if gap_s is None else gap_s
        if not (self.gap_s > 0.0 and math.isfinite(self.gap_s)):
            raise ValueError("gap_s must be a positive number")
        self.normally_closed = normally_closed
        self._base_kwh: float | None = None if state is None else state.base_kwh
        self._base_pulses = 0 if state is None else state.base_pulses
        self.emitted = 0 if state is None else state.emitted
        self._owed = self.emitted if state is None else max(self.emitted, state.base_pulses)
        self._on_until: float | None = None
        self._free_at = -math.inf  # the next pulse may start from this time

    @property
    def max_power_kw(self) -> float:
        """The highest power whose pulses keep pace: one pulse per width + gap."""
        return 3600.0 / (self.pulses_per_kwh * (self.width_s + self.gap_s))

    @property
    def owed(self) -> int:
        """Pulses owed for the energy counted so far (given or waiting)."""
        return self._owed

    @property
    def waiting(self) -> int:
        """Pulses owed and not yet given (non-zero only above ``max_power_kw``)."""
        return self._owed - self.emitted

    @property
    def pulsing(self) -> bool:
        """Whether a pulse is being given now."""
        return self._on_until is not None

    def state(self) -> PulseState:
        """What to save to continue after a restart without losing or adding pulses."""
        base = self._base_kwh if self._base_kwh is not None else 0.0
        return PulseState(base, self._base_pulses, self.emitted)

    def _count(self, energy_kwh: float) -> None:
        if not math.isfinite(energy_kwh):
            return  # a missing value: nothing is owed for it
        if self._base_kwh is None:
            self._base_kwh = energy_kwh
            self._base_pulses = self._owed
            return
        owed = self._base_pulses + math.floor((energy_kwh - self._base_kwh) * self.pulses_per_kwh)
        if owed < self._owed or energy_kwh < self._base_kwh:
            # The counter went down: start again from here, keeping what was owed.
            self._base_kwh = energy_kwh
            self._base_pulses = self._owed
            return
        self._owed = owed

    def step(self, now_s: float, energy_kwh: float) -> bool:
        """The output's level at ``now_s`` (True: contact closed) with the counter at
        ``energy_kwh``; call it at least every ``width_s / 2`` while pulses are due."""
        self._count(energy_kwh)
        if self._on_until is not None and now_s >= self._on_until:
            # The gap counts from when the contact really opened: this step, not the planned
            # end, so a late step never shortens it.
            self._free_at = now_s + self.gap_s
            self._on_until = None
        if self._on_until is None and self.emitted < self._owed and now_s >= self._free_at:
            self._on_until = now_s + self.width_s
            self.emitted += 1
        on = self._on_until is not None
        return on != self.normally_closed
