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
    lengths: FloatArray  # each window's length in samples, as it was laid out

    @property
    def n_windows(self) -> int:
        """Number of windows in the plan."""
        return int(self.bounds.shape[0]) - 1

    @property
    def window_samples(self) -> FloatArray:
        """Length of each window in samples: the lengths it was laid out with, not the
        differences of its bounds, which far into a run (bounds of 1e7 samples and more)
        differ in their last bits from window to window."""
        return self.lengths

    def weights(
        self, start: FloatArray | None = None, stop: FloatArray | None = None
    ) -> FloatArray:
        """Weights ``(n_windows, length)`` of each window's samples; rows sum to its length.

        ``start`` and ``stop`` replace the window bounds, e.g. to weigh half a window.
        """
        lo = self.bounds[:-1] if start is None else start
        hi = self.bounds[1:] if stop is None else stop
        k = self.first[:, None] + np.arange(self.length)[None, :]
        width = 2.0 * self.half_edge
        rise = (k - (lo[:, None] - self.half_edge)) / width
        fall = (k - (hi[:, None] - self.half_edge)) / width
        w: FloatArray = smooth_step(rise) - smooth_step(fall)
        return w


def plan_windows(
    first_bound: float,
    window_samples: FloatArray,
    half_edge: float,
    available_end: int,
    max_windows: int | None = None,
) -> WindowPlan:
    """Plan every window from ``first_bound`` on whose samples are all available.

    ``window_samples[j]`` is the length of window ``j`` in samples (cycles × rate / its
    frequency); windows beyond the given lengths take the last one. ``available_end`` is the
    coordinate just past the last sample at hand; at most ``max_windows`` are planned.
    """
    lengths = np.asarray(window_samples, dtype=np.float64).ravel()
    longest = float(lengths.max())
    length = int(np.ceil(longest + 2.0 * half_edge)) + 2
    room = available_end - first_bound
    n_max = max(0, int(np.floor(room / float(lengths.min())))) + 1
    if n_max > lengths.size:
        lengths = np.concatenate((lengths, np.full(n_max - lengths.size, lengths[-1])))
    bounds = first_bound + np.concatenate(([0.0], np.cumsum(lengths[:n_max])))
    first = (np.floor(bounds[:-1] - half_edge) + 1).astype(np.int64)
    # Each window reads ``length`` samples from its first one: all of them must be at hand.
    n = int(np.count_nonzero(first + length <= available_end))
    if max_windows is not None:
        n = min(n, max_windows)
    return WindowPlan(
        bounds=bounds[: n + 1],
        first=first[:n],
        length=length,
        half_edge=half_edge,
        lengths=lengths[:n],
    )
