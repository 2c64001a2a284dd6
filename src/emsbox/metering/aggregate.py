"""Aggregation of many windows into one value per variable (IEC 61000-4-30 style).

Voltages, currents and THD aggregate as the square root of the mean of the squares; powers as
their time-weighted mean (so that power × time equals energy); power factors are recomputed
from the aggregated powers; frequency is the number of cycles over the time they took.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emsbox.metering.readings import WindowBatch
from emsbox.samples import FloatArray

_RMS_PREFIXES = ("v_", "i_", "thd_")
_POWER_PREFIXES = ("p_", "q_", "s_")


def aggregate(batches: Sequence[WindowBatch]) -> dict[str, float]:
    """One value per variable over every window of ``batches`` (all of one load)."""
    batches = [b for b in batches if b.n_windows]
    if not batches:
        return {}
    duration = np.concatenate([b.duration_s for b in batches])
    names = list(batches[0].values)
    out: dict[str, float] = {}
    for name in names:
        x = np.concatenate([b.values[name] for b in batches])
        out[name] = _aggregate_one(name, x, duration)
    for suffix in ("l1", "l2", "l3", "sys"):
        p, s = out.get(f"p_{suffix}"), out.get(f"s_{suffix}")
        if p is not None and s is not None:
            out[f"pf_{suffix}"] = max(-1.0, min(1.0, p / s)) if s > 0.0 else 1.0
    return out


def _aggregate_one(name: str, x: FloatArray, duration: FloatArray) -> float:
    if name == "freq" or name.startswith(_POWER_PREFIXES):
        # Time-weighted mean; for frequency this is total cycles over total time.
        return float(np.sum(x * duration) / np.sum(duration))
    if name.startswith(_RMS_PREFIXES):
        return float(np.sqrt(np.mean(x * x)))
    return float(np.mean(x))
