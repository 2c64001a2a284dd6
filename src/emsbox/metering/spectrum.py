"""Harmonic analysis over synchronised windows: DFT bins, subgroups and THD (IEC 61000-4-7).

With a window of exactly ``N`` cycles the DFT bins lie at multiples of ``f/N``; harmonic ``n``
is bin ``N·n`` and its subgroup is that bin with its two neighbours (``N·n ± 1``), the energy
of which is added (IEC 61000-4-7 §3.3 "harmonic subgroup"). Only the bins a subgroup needs are
computed, by one matrix product of all windows and channels with a basis of cosines and sines,
which BLAS runs at full speed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from emsbox.samples import FloatArray

MAX_HARMONIC = 31
ComplexArray = npt.NDArray[np.complex128]


def subgroup_bins(cycles: int) -> npt.NDArray[np.int64]:
    """The DFT bins of harmonic subgroups 1…31: ``[N-1, N, N+1, 2N-1, …, 31N+1]``."""
    centres = cycles * np.arange(1, MAX_HARMONIC + 1)
    out: npt.NDArray[np.int64] = (centres[:, None] + np.array([-1, 0, 1])[None, :]).ravel()
    return out.astype(np.int64)


# A few bases cover a slowly drifting grid frequency; each is ~2 MB.
@lru_cache(maxsize=8)
def basis(cycles: int, window_samples: float, length: int) -> FloatArray:
    """Cosine and sine columns ``(length, 2·bins)`` of every subgroup bin, from the first sample.

    Bin ``c`` has ``c / window_samples`` cycles per sample. The product runs in float64: in
    float32 the rounding of a large channel (~1e-7 of it) would show in a small current
    derived from it, such as a 3P3W L2 current of 20 mA next to 65 A phases.
    """
    bins = subgroup_bins(cycles).astype(np.float64)
    # exp(-2πi·c·k/W) for k = 64·a + r is exp(-2πi·c·64a/W)·exp(-2πi·c·r/W): two small tables
    # and one product instead of a sine and cosine per element (a drifting grid frequency
    # asks for a new basis every few seconds, so this must be cheap).
    step = 64
    coarse = np.arange(0, length + step, step, dtype=np.float64)
    fine = np.arange(step, dtype=np.float64)
    cycles_per_sample = bins / window_samples
    outer = np.exp(-2j * np.pi * np.mod(np.outer(coarse, cycles_per_sample), 1.0))
    inner = np.exp(-2j * np.pi * np.mod(np.outer(fine, cycles_per_sample), 1.0))
    table = (outer[:, None, :] * inner[None, :, :]).reshape(-1, bins.size)[:length]
    out = np.empty((length, 2 * bins.size), dtype=np.float64)
    out[:, : bins.size] = table.real
    out[:, bins.size :] = table.imag
    return out


def dft_bins(weighted: FloatArray, cycles: int, window_samples: float) -> ComplexArray:
    """Subgroup bins ``(rows, bins)`` of weighted sample rows ``(rows, length)``.

    Bin phases refer to each row's first sample. Divide by the sum of the weights to get
    the complex amplitude of each bin (half the peak value of a sinusoid).
    """
    b = basis(cycles, window_samples, weighted.shape[1])
    prod = weighted @ b
    half = prod.shape[1] // 2
    out: ComplexArray = prod[:, :half] + 1j * prod[:, half:]
    return out


def thd_percent(bins: ComplexArray) -> FloatArray:
    """THD in % of each row from its subgroup bins: harmonics 2…31 over the fundamental subgroup.

    IEC 61000-4-7 THDS: the r.m.s. of subgroups 2…31 relative to subgroup 1.
    """
    energy = np.abs(bins) ** 2
    per_subgroup = energy.reshape(*energy.shape[:-1], MAX_HARMONIC, 3).sum(axis=-1)
    fundamental = per_subgroup[..., 0]
    harmonics = per_subgroup[..., 1:].sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        thd = np.where(fundamental > 0.0, 100.0 * np.sqrt(harmonics / fundamental), 0.0)
    result: FloatArray = thd
    return result


def fundamental(bins: ComplexArray) -> ComplexArray:
    """The fundamental bin (centre of subgroup 1) of each row."""
    out: ComplexArray = bins[..., 1]
    return out
