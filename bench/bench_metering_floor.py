"""The least the measurement engine's steps can cost here: each step alone, against the budget
of 1000× real time (prints only).

Usage: .venv/bin/python bench/bench_metering_floor.py [--loads 11] [--sample-rate 6400]

For one second of signal of ``loads`` three-phase loads (7 channels each: 3 V, 3 I, neutral) at
``sample-rate`` S/s, in 10-cycle windows at 50 Hz (5 windows a second, each with one cycle of
smooth edge), this times on one core with single-threaded BLAS:

- one pass over every sample (a sum of squares): what any meter must at least read;
- the harmonic subgroup bins 1…31 of the 6 spectral channels of every window as the engine
  computes them (one matrix product with a cosine/sine basis), in float64 and in float32;
- the cheapest complete spectrum instead: a real FFT of every window's samples (numpy's
  pocketfft), in float64 and float32, at the window's own length and padded to a power of two
  (an FFT gives bins on the sample grid only, so it would still need the window resampled or
  its bins interpolated: these times leave that out).

1000× real time leaves 1 ms of CPU for all of it; each line says how fast the engine could be
if that step were the only one.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

# One core, one BLAS thread: set before numpy loads its BLAS.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import numpy as np  # noqa: E402

BUDGET_MS = 1.0  # CPU per second of signal at 1000× real time
SUBGROUP_BINS = 93  # 31 harmonics × 3 bins (IEC 61000-4-7 subgroups)


def cpu_ms(step: Callable[[], object], seconds: float = 2.0) -> float:
    """Median CPU time of ``step`` in ms over repeats lasting about ``seconds``."""
    step()
    times: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end or len(times) < 5:
        start = time.process_time()
        step()
        times.append(time.process_time() - start)
    return 1e3 * float(np.median(times))


def main() -> int:
    """Time each step and print it against the budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=11)
    parser.add_argument("--sample-rate", type=float, default=6400.0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rng = np.random.default_rng(1)
    rate, loads = args.sample_rate, args.loads
    windows = 5
    length = int(np.ceil(rate / 5.0 + rate / 50.0)) + 2  # a window and its edges
    spectral = 6 * loads * windows  # rows of the subgroup product
    samples = rng.standard_normal((7 * loads, int(rate)))
    rows = rng.standard_normal((spectral, length))
    basis = rng.standard_normal((length, 2 * SUBGROUP_BINS))
    rows32, basis32 = rows.astype(np.float32), basis.astype(np.float32)
    padded = 1 << int(np.ceil(np.log2(length)))
    steps: list[tuple[str, Callable[[], object]]] = [
        ("one pass over the samples", lambda: np.einsum("ij,ij->i", samples, samples)),
        ("subgroup bins, matrix product float64", lambda: rows @ basis),
        ("subgroup bins, matrix product float32", lambda: rows32 @ basis32),
        (f"real FFT float64, {length} points", lambda: np.fft.rfft(rows, axis=1)),
        (f"real FFT float32, {length} points", lambda: np.fft.rfft(rows32, axis=1)),
        (f"real FFT float64, {padded} points", lambda: np.fft.rfft(rows, padded, axis=1)),
        (f"real FFT float32, {padded} points", lambda: np.fft.rfft(rows32, padded, axis=1)),
    ]
    print(
        f"metering floor: {loads} loads, {7 * loads} channels at {rate:g} S/s, 1 s of signal, "
        f"{windows} windows of {length} samples; budget at 1000x: {BUDGET_MS:g} ms"
    )
    for label, step in steps:
        ms = cpu_ms(step)
        print(f"  {label:<40} {ms:7.3f} ms   alone: {1000.0 / ms:7.0f} x real time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
