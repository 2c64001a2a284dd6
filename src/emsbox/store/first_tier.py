"""Readings into buckets of the first (finest) tier, in memory until the bucket closes.

A reading covers [timestamp_s − duration_s, timestamp_s] and belongs to the bucket holding
the middle of that span, so a cycle aligned to the wall clock lands in the bucket it measured
even when its end falls exactly on the next bucket's start.

Within a bucket: instantaneous variables (and the state variables ``tariff`` and
``partial_running``, as numbers) are averaged weighted by each reading's duration, with the
minimum of the readings' minima and the maximum of their maxima; counters keep the value of
the latest reading. Values that are not finite are left out, as if the reading lacked them;
the variable stays in the bucket's layout (stored as NaN = no value) so that one bad value
does not create a new layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from emsbox.bus import Reading
from emsbox.store.row_format import COUNTER_NAMES, Layout, RowBlock

# Weight of a reading whose duration is missing or zero: its values still count (as a plain
# mean among such readings) without pretending to cover any time.
MIN_WEIGHT_S = 1e-9


class BadReadingError(ValueError):
    """A reading that cannot be logged at all (no load name, no usable time)."""


def bucket_of(reading: Reading, resolution_s: int) -> int:
    """Start of the first-tier bucket ``reading`` belongs to."""
    t = reading.timestamp_s
    if not isinstance(reading.load, str) or not reading.load:
        raise BadReadingError(f"reading without a load name ({reading.load!r})")
    if not math.isfinite(t) or t < 0.0:
        raise BadReadingError(f"reading of {reading.load!r} has an unusable timestamp {t!r}")
    middle = t - _duration(reading) / 2.0
    return math.floor(middle / resolution_s) * resolution_s


def _duration(reading: Reading) -> float:
    d = reading.duration_s
    return float(d) if isinstance(d, (int, float)) and math.isfinite(d) and d > 0.0 else 0.0


def _finite(x: object) -> float | None:
    if isinstance(x, (int, float)):
        value = float(x)
        return value if math.isfinite(value) else None
    return None


@dataclass
class OpenBucket:
    """One load's first-tier bucket, accumulating readings until it is written."""

    bucket_s: int
    covered_s: float = 0.0
    last_timestamp_s: float = -math.inf
    names: set[str] = field(default_factory=set)
    _weighted: dict[str, float] = field(default_factory=dict)
    _weights: dict[str, float] = field(default_factory=dict)
    _min: dict[str, float] = field(default_factory=dict)
    _max: dict[str, float] = field(default_factory=dict)
    _counters: dict[str, float] = field(default_factory=dict)
    _counter_time: dict[str, float] = field(default_factory=dict)
    readings: int = 0

    def add(self, reading: Reading) -> None:
        """Accumulate one reading of this bucket."""
        duration = _duration(reading)
        weight = max(duration, MIN_WEIGHT_S)
        self.covered_s += duration
        self.readings += 1
        t = float(reading.timestamp_s)
        self.last_timestamp_s = max(self.last_timestamp_s, t)
        values = dict(reading.values)
        values["tariff"] = reading.tariff
        values["partial_running"] = float(bool(reading.partial_running))
        for name, raw in values.items():
            if name in COUNTER_NAMES:
                self._add_counter(name, raw, t)
                continue
            self.names.add(name)
            value = _finite(raw)
            if value is None:
                continue
            self._weighted[name] = self._weighted.get(name, 0.0) + weight * value
            self._weights[name] = self._weights.get(name, 0.0) + weight
            low = _finite(reading.minimum.get(name, value))
            high = _finite(reading.maximum.get(name, value))
            low = value if low is None else min(low, value)
            high = value if high is None else max(high, value)
            self._min[name] = min(self._min.get(name, low), low)
            self._max[name] = max(self._max.get(name, high), high)
        for name, raw in reading.counters.items():
            self._add_counter(name, raw, t)

    def _add_counter(self, name: str, raw: object, t: float) -> None:
        self.names.add(name)
        value = _finite(raw)
        # The latest reading's value; ties (equal timestamps) go to the one submitted last.
        if value is not None and t >= self._counter_time.get(name, -math.inf):
            self._counters[name] = value
            self._counter_time[name] = t

    def to_block(self, resolution_s: int) -> RowBlock:
        """The bucket as one row, its covered time capped at the bucket's length."""
        layout = Layout.of(self.names)
        ni = len(layout.instantaneous)
        avg = np.full((1, ni), np.nan)
        low = np.full((1, ni), np.nan)
        high = np.full((1, ni), np.nan)
        for j, name in enumerate(layout.instantaneous):
            weight = self._weights.get(name, 0.0)
            if weight > 0.0:
                avg[0, j] = self._weighted[name] / weight
                low[0, j] = self._min[name]
                high[0, j] = self._max[name]
        counters = np.array(
            [[self._counters.get(name, np.nan) for name in layout.counters]], dtype=np.float64
        ).reshape(1, len(layout.counters))
        return RowBlock(
            layout,
            np.array([self.bucket_s], dtype=np.int64),
            np.array([min(self.covered_s, float(resolution_s))]),
            counters,
            avg,
            low,
            high,
            [layout],
            np.zeros(1, dtype=np.int64),
        )
