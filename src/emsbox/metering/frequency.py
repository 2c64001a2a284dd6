"""Fundamental frequency: a coarse first estimate, then measurement by phase progression.

The first estimate comes from the spectral peak of the reference voltage (robust against
harmonics, noise and DC). After that each window's frequency follows from how far the phase of
the fundamental advances between the centres of the window's two halves: with 10-cycle windows
the phase noise of 0.2 % white noise gives a few tenths of a mHz, well inside the 2 mHz target.
"""

from __future__ import annotations

import numpy as np

from emsbox.samples import FloatArray

MIN_FREQUENCY_HZ = 40.0
MAX_FREQUENCY_HZ = 70.0


def coarse_frequency(signal: FloatArray, sample_rate_hz: float, nominal_hz: float) -> float:
    """Estimate the fundamental of ``signal`` to a few mHz from its spectral peak.

    Returns ``nominal_hz`` when the signal carries no discernible fundamental.
    """
    x = signal - np.mean(signal)
    n = x.size
    if n < 16 or not np.any(x):
        return nominal_hz
    padded = 1 << int(np.ceil(np.log2(n * 4)))
    spectrum = np.abs(np.fft.rfft(x * np.hanning(n), padded))
    hz_per_bin = sample_rate_hz / padded
    lo = int(MIN_FREQUENCY_HZ / hz_per_bin)
    hi = min(int(MAX_FREQUENCY_HZ / hz_per_bin) + 1, spectrum.size - 1)
    peak = lo + int(np.argmax(spectrum[lo:hi]))
    if spectrum[peak] <= 0.0 or peak <= 0:
        return nominal_hz
    # Parabolic interpolation on the log magnitude refines the peak between bins.
    a, b, c = np.log(spectrum[peak - 1 : peak + 2] + 1e-300)
    denom = a - 2.0 * b + c
    offset = 0.5 * (a - c) / denom if denom != 0.0 else 0.0
    return float((peak + offset) * hz_per_bin)


def reference_phasor(phasors: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """Positive-sequence combination of the voltage phasors used to track the frequency.

    Three phases give ``V1 + a·V2 + a²·V3`` (harmonic and unbalance rejection, survives the
    loss of a phase); otherwise the phasors are used as they come.
    """
    a = np.exp(2j * np.pi / 3.0)
    rows = [phasors[n] for n in names]
    out: np.ndarray = rows[0] + a * rows[1] + a * a * rows[2] if len(rows) == 3 else rows[0]
    return out


def advance_frequency(
    phase_a: np.ndarray, phase_b: np.ndarray, interval_s: FloatArray, expected_hz: FloatArray
) -> FloatArray:
    """Frequency from the phase (rad) of the fundamental at two instants ``interval_s`` apart.

    The number of whole cycles between them is the one closest to what ``expected_hz``
    predicts, so the result is right as long as it is within ±1/(2·interval) of it (±5 Hz
    for the halves of a 10-cycle window).
    """
    dphi = (phase_b - phase_a) / (2.0 * np.pi)
    whole = np.round(expected_hz * interval_s - dphi)
    f = (whole + dphi) / interval_s
    out: FloatArray = np.clip(f, MIN_FREQUENCY_HZ, MAX_FREQUENCY_HZ)
    return out
