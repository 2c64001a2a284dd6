"""History queries: variables of a load over a range, downsampled to at most N points.

The range [start, end) is cut into ``points`` buckets of equal width. Rows come from the best
tier, the coarsest whose resolution is at most that width (the finest if none is), completed
by coarser tiers where retention removed the older part and finer tiers where the newest part
has not been rolled up yet (see ``coverage``). A row falls in the bucket holding its start.

Per bucket: instantaneous variables give the average weighted by covered time, the minimum of
the minima and the maximum of the maxima; counters give their last end value as ``avg`` and
the least and greatest end values as ``min`` and ``max``. Buckets without a value are left
out, so each series has its own ``t``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emsbox import variables
from emsbox.store.coverage import LogView, read_span
from emsbox.store.first_tier import MIN_WEIGHT_S
from emsbox.store.row_format import FloatArray, IntArray

MAX_POINTS = 10_000


@dataclass(frozen=True)
class Series:
    """One variable's buckets that hold a value: start time, average, minimum, maximum."""

    t: FloatArray
    avg: FloatArray
    min: FloatArray
    max: FloatArray


@dataclass(frozen=True)
class History:
    """Variables of a load over a range; variables the load never had are absent."""

    load: str
    tier_resolution_s: int
    series: dict[str, Series]


def choose_tier(resolutions: Sequence[int], width_s: float) -> int:
    """Index of the coarsest tier whose resolution is at most ``width_s`` (else the finest)."""
    best = 0
    for k, r in enumerate(resolutions):
        if r <= width_s:
            best = k
    return best


def check_arguments(names: Sequence[str], start_s: float, end_s: float, points: int) -> None:
    """Raise ValueError with a clear message on arguments no query can answer."""
    if isinstance(names, str):
        raise ValueError("names must be a sequence of variable names, not one string")
    if not names:
        raise ValueError("name at least one variable")
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise ValueError(f"start and end must be finite times, got {start_s!r} and {end_s!r}")
    if start_s >= end_s:
        raise ValueError(f"start ({start_s}) must be before end ({end_s})")
    if isinstance(points, bool) or not isinstance(points, int):
        raise ValueError(f"points must be a whole number, got {points!r}")
    if not 1 <= points <= MAX_POINTS:
        raise ValueError(f"points must be between 1 and {MAX_POINTS}, got {points}")


@dataclass(frozen=True)
class _Grid:
    """The output buckets: ``points`` of ``width_s`` from ``start_s``."""

    start_s: float
    width_s: float
    points: int

    def series(
        self, buckets: IntArray, avg: FloatArray, low: FloatArray, high: FloatArray
    ) -> Series:
        """A series of the given buckets, taking their values from per-bucket arrays."""
        return Series(
            self.start_s + buckets.astype(np.float64) * self.width_s,
            avg[buckets],
            low[buckets],
            high[buckets],
        )


def query(
    view: LogView,
    load: str,
    names: Sequence[str],
    *,
    start_s: float,
    end_s: float,
    points: int,
) -> History:
    """The history of ``names`` of ``load`` (see the module docstring)."""
    check_arguments(names, start_s, end_s, points)
    conn, catalog = view.conn, view.catalog
    load_id = catalog.load_id(conn, load)
    if load_id is None:
        raise ValueError(f"no data logged for load {load!r}")
    known = catalog.names_of_load(conn, load_id)
    for name in names:
        if name not in variables.BY_NAME and name not in known:
            raise ValueError(f"unknown variable {name!r}")
    wanted = frozenset(names) & known
    grid = _Grid(start_s, (end_s - start_s) / points, points)
    k = choose_tier(view.resolutions, grid.width_s)
    series: dict[str, Series] = {}
    if wanted:
        span = read_span(view, load_id, tier=k, start_s=start_s, end_s=end_s, names=wanted)
        block = span.block
        offset = (block.bucket_s - start_s) // grid.width_s
        index = np.clip(offset.astype(np.int64), 0, points - 1)
        weight = np.maximum(block.covered_s, MIN_WEIGHT_S)
        for name in dict.fromkeys(names):
            inst = block.instant(name)
            counter = block.counter(name)
            if inst is not None:
                series[name] = _instant_series(grid, index, weight, inst)
            elif counter is not None:
                series[name] = _counter_series(grid, index, counter)
            elif name in wanted:
                empty = np.zeros(0)
                series[name] = Series(empty, empty, empty, empty)
    return History(load, view.resolutions[k], series)


def _instant_series(
    grid: _Grid,
    index: IntArray,
    weight: FloatArray,
    stats: tuple[FloatArray, FloatArray, FloatArray],
) -> Series:
    avg, low, high = stats
    ok = np.isfinite(avg)
    i, w = index[ok], weight[ok]
    num = np.bincount(i, weights=w * avg[ok], minlength=grid.points)
    den = np.bincount(i, weights=w, minlength=grid.points)
    mean = np.full(grid.points, np.nan)
    np.divide(num, den, out=mean, where=den > 0.0)
    lo = np.full(grid.points, np.nan)
    hi = np.full(grid.points, np.nan)
    np.fmin.at(lo, i, low[ok])
    np.fmax.at(hi, i, high[ok])
    return grid.series(np.flatnonzero(den > 0.0), mean, lo, hi)


def _counter_series(grid: _Grid, index: IntArray, values: FloatArray) -> Series:
    ok = np.flatnonzero(np.isfinite(values))
    i = index[ok]
    # Rows are in time order: the greatest row number in a bucket holds its last value.
    last_row = np.full(grid.points, -1, dtype=np.int64)
    np.maximum.at(last_row, i, ok)
    has = last_row >= 0
    last = np.full(grid.points, np.nan)
    last[has] = values[last_row[has]]
    lo = np.full(grid.points, np.nan)
    hi = np.full(grid.points, np.nan)
    np.fmin.at(lo, i, values[ok])
    np.fmax.at(hi, i, values[ok])
    return grid.series(np.flatnonzero(has), last, lo, hi)
