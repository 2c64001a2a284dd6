"""What the meter produces: per-load readings of consecutive measurement windows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emsbox.samples import FloatArray, Wiring


@dataclass(frozen=True)
class WindowBatch:
    """Instantaneous values of one load over consecutive, gapless measurement windows.

    ``values[name][j]`` is VARIABLES.md variable ``name`` for window ``j``; a variable that
    cannot exist for the wiring (e.g. ``v_l3`` on 1P2W) is absent from ``values``.
    """

    load: str
    wiring: Wiring
    start_s: FloatArray
    duration_s: FloatArray
    values: dict[str, FloatArray] = field(default_factory=dict)

    @property
    def n_windows(self) -> int:
        """Number of windows in the batch."""
        return int(self.start_s.shape[0])

    def window(self, j: int) -> dict[str, float]:
        """All values of window ``j`` as plain floats."""
        return {name: float(v[j]) for name, v in self.values.items()}

    @staticmethod
    def empty(load: str, wiring: Wiring) -> WindowBatch:
        """A batch holding no window."""
        return WindowBatch(load, wiring, np.zeros(0), np.zeros(0), {})
