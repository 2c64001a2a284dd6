"""Measurement windows: gapless, synchronised to the fundamental, with smooth edges.

A window spans exactly ``cycles`` periods of the measured fundamental (IEC 61000-4-30 basic
interval: 10 cycles at 50 Hz, 12 at 60 Hz), which is generally not a whole number of samples.
Rather than resampling, each window weighs the samples with a function that is 1 inside the
window and falls to 0 across each boundary along a smooth step (the integral of a Hann bump one
cycle wide, centred on the boundary). The steps of neighbouring windows are complementary, so
the weights of all windows add up to exactly 1 at every sample: energy is conserved to the last
sample and no part of the signal is counted twice or lost.

Why this is exact: the weighted sum over samples equals the integral of the signal over the
continuous window ``rect(T) * hann(D)``, apart from spectral images at multiples of the sample
rate. The spectrum of that window is zero at every non-zero multiple of ``1/T`` (so harmonics do
not leak into each other or into the mean), and decays as ``1/f^4``, so the images are ~1e-9 of
the signal even for the 31st harmonic at 65 Hz and 6.4 kS/s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emsbox.samples import FloatArray

IntArray = np.ndarray[tuple[int, ...], np.dtype[np.int64]]


def cycles_per_window(nominal_frequency_hz: float) -> int:
    """Cycles in one window: 10 on 50 Hz systems and 12 on 60 Hz systems (IEC 61000-4-30)."""
    return 12 if nominal_frequency_hz >= 55.0 else 10


def smooth_step(x: FloatArray) -> FloatArray:
    """0 for x <= 0, 1 for x >= 1, and the integral of a Hann bump in between."""
    xc = np.clip(x, 0.0, 1.0)
    out: FloatArray = xc - np.sin(2.0 * np.pi * xc) / (2.0 * np.pi)
    return out


@dataclass(frozen=True)
class WindowPlan:
    """Where a run of consecutive windows lies, in sample coordinates of the source.

    Sample coordinate ``u`` is the time since the source's first sample times the sample
    rate, so sample ``k`` sits at ``u = k``. Window ``j`` covers ``[bounds[j], bounds[j+1])``
    and needs the samples ``first[j] .. first[j] + length - 1`` (its smooth edges included).
    """

    bounds: FloatArray
    first: IntArray
    length: int
    half_edge: float

    @property
    def n_windows(self) -> int:
        """Number of windows in the plan."""
        return int(self.bounds.shape[0]) - 1

    def weights(self) -> FloatArray:
        """Weights ``(n_windows, length)`` of each window's samples; rows sum to its length."""
        k = self.first[:, None] + np.arange(self.length)[None, :]
        width = 2.0 * self.half_edge
        start = (k - (self.bounds[:-1, None] - self.half_edge)) / width
        stop = (k - (self.bounds[1:, None] - self.half_edge)) / width
        w: FloatArray = smooth_step(start) - smooth_step(stop)
        return w


def plan_windows(
    first_bound: float, window_samples: float, half_edge: float, available_end: int
) -> WindowPlan:
    """Plan every window that starts at ``first_bound`` and whose samples are all available.

    ``window_samples`` is the window length in samples (cycles × rate / frequency) and
    ``available_end`` the coordinate just past the last sample at hand.
    """
    length = int(np.ceil(window_samples + 2.0 * half_edge)) + 2
    # The last sample a window needs lies just below bounds[j+1] + half_edge.
    room = available_end - (first_bound + half_edge)
    n = max(0, int(np.floor(room / window_samples))) if room > 0 else 0
    bounds = first_bound + window_samples * np.arange(n + 1, dtype=np.float64)
    first = (np.floor(bounds[:-1] - half_edge) + 1).astype(np.int64)
    # Each window reads ``length`` samples from its first one: all of them must be at hand.
    while n > 0 and first[n - 1] + length > available_end:
        n -= 1
        bounds = bounds[: n + 1]
        first = first[:n]
    return WindowPlan(bounds=bounds, first=first, length=length, half_edge=half_edge)
