"""What every recording format reader yields, and the checks the formats share.

A reader turns a file into :class:`Recorded` signals: one uniform time axis and the samples
of the signals a wiring uses. Problems become :class:`SourceError` with a one-line message
that names the file and the place (line, sample, column) where that helps the user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emsbox.samples import OPTIONAL_SIGNALS, REQUIRED_SIGNALS, SIGNALS, FloatArray, Wiring
from emsbox.sources.base import SourceError

# A step of the time axis may differ from the median step by this fraction of it (plus the
# resolution of the time values, where the format states one): enough for times rounded to
# the microsecond at up to 10 kS/s, far too little to hide a lost sample (a double step).
STEP_TOLERANCE = 0.01


@dataclass(frozen=True)
class Recorded:
    """Samples of one recording on a uniform time axis, in V and A.

    ``signals`` maps signal names (see ``emsbox.samples.SIGNALS``) to equally long arrays;
    sample ``k`` was taken at ``start_s + k / sample_rate_hz``.
    """

    sample_rate_hz: float
    start_s: float
    signals: Mapping[str, FloatArray]


def recording_error(path: Path | str, problem: str) -> SourceError:
    """A SourceError saying ``<path>: <problem>`` on a single line."""
    return SourceError(one_line(f"{path}: {problem}"))


def one_line(text: str) -> str:
    """Collapse every run of whitespace (newlines included) into one space."""
    return " ".join(text.split())


def signals_for(
    path: Path | str, wiring: Wiring, available: Iterable[str], listing: str
) -> list[str]:
    """The signals to replay: those the wiring requires, plus its optional ones on offer.

    They come in the order of ``SIGNALS``, whatever the order in the file. ``listing`` names
    what the file holds, for the message when a required signal is missing.
    """
    present = set(available)
    missing = [s for s in REQUIRED_SIGNALS[wiring] if s not in present]
    if missing:
        raise recording_error(
            path,
            f"recording lacks {'channel' if len(missing) == 1 else 'channels'} "
            f"{', '.join(missing)} needed for {wiring.value} wiring "
            f"({listing})",
        )
    wanted = set(REQUIRED_SIGNALS[wiring]) | (set(OPTIONAL_SIGNALS[wiring]) & present)
    return [s for s in SIGNALS if s in wanted]


def count(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless ``n`` is 1: '1 field', '2 fields'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def check_sample_count(path: Path | str, n_samples: int) -> None:
    """Refuse recordings without the two samples a sample rate needs."""
    if n_samples < 2:
        raise recording_error(
            path, f"recording holds {count(n_samples, 'sample')}; at least 2 samples are needed"
        )


def first_non_finite(values: FloatArray) -> int | None:
    """Index of the first NaN or infinite value, or None when all are finite."""
    bad = ~np.isfinite(values)
    return int(np.argmax(bad)) if bad.any() else None


def describe_non_finite(value: float) -> str:
    """'NaN' or 'infinite', for messages."""
    return "NaN" if np.isnan(value) else "infinite"


def rate_from_times(
    path: Path | str, t: FloatArray, where: Callable[[int], str], resolution_s: float = 0.0
) -> float:
    """Sample rate of a time axis that must rise in uniform steps.

    ``where(k)`` names sample ``k`` in messages (e.g. "line 12"). A step may deviate from the
    median step by ``STEP_TOLERANCE`` of it plus ``resolution_s``, the quantum in which the
    file stores times. The rate is the mean over the whole recording, which averages out
    rounding of the individual times.
    """
    bad = first_non_finite(t)
    if bad is not None:
        raise recording_error(path, f"{where(bad)}: time is {describe_non_finite(t[bad])}")
    steps = np.diff(t)
    not_rising = np.flatnonzero(steps <= 0)
    if not_rising.size:
        k = int(not_rising[0]) + 1
        raise recording_error(
            path,
            f"{where(k)}: time {t[k]:.9g} s is not after the previous time {t[k - 1]:.9g} s "
            "(time must be strictly increasing)",
        )
    median = float(np.median(steps))
    tolerance = STEP_TOLERANCE * median + resolution_s
    uneven = np.flatnonzero(np.abs(steps - median) > tolerance)
    if uneven.size:
        k = int(uneven[0]) + 1
        raise recording_error(
            path,
            f"{where(k)}: uneven sampling: the step to time {t[k]:.9g} s is {steps[k - 1]:.9g} s, "
            f"but the median step is {median:.9g} s (tolerance {STEP_TOLERANCE:.0%} of it"
            + (f" plus {resolution_s:.3g} s time resolution)" if resolution_s else ")"),
        )
    return float((t.size - 1) / (t[-1] - t[0]))
