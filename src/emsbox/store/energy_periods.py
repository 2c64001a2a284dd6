"""Energy per calendar period (day, week, month, year) from counter differences.

Periods follow the local calendar of a time zone: a day runs from local midnight to the next
(23 or 25 hours across a daylight-saving change), a week from Monday, a month from its first
day, a year from 1 January. The energy of a period is never integrated from logged averages:
it is the counter's value at the period end minus its value at the period start, the value at
a boundary being the end value of the last bucket that ends at or before it.

Boundaries are read from the coarsest tier whose resolution divides every boundary (one hour
where the UTC offset is whole hours, 15 minutes for +05:45), so a boundary falls on a bucket
end. A counter that went backwards (meter replaced, counters lost) must not give negative
energy: only the positive steps between consecutive logged values count, which equals the
plain difference whenever the counter only grew. The period still running ends at the latest
logged value and is marked incomplete, as is the period in which logging began.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from emsbox.store import tables
from emsbox.store.coverage import LogView, read_span
from emsbox.store.row_format import FloatArray, IntArray, RowBlock, concatenate, decode

Period = Literal["day", "week", "month", "year"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "year")
# The totals reported per period (those the load has).
ENERGY_TOTALS: tuple[str, ...] = (
    "kwh_imp",
    "kwh_exp",
    "kwh_imp_t1",
    "kwh_imp_t2",
    "kvarh_imp",
    "kvarh_exp",
    "kvah",
)
# Most periods one query may return (a day each for about 27 years).
MAX_PERIODS = 10_000
# Counters are stored to a millionth of their unit; differences are rounded to that.
DECIMALS = 6


@dataclass(frozen=True)
class EnergyPeriod:
    """Energy of one calendar period per counter name (kWh, kvarh, kVAh).

    ``start_s`` and ``end_s`` are the period's calendar bounds. ``complete`` is False for the
    period still running (its values reach the latest logged value) and for the period in
    which logging began (its values start at the first logged value).
    """

    start_s: float
    end_s: float
    values: dict[str, float]
    complete: bool


def _period_start(day: date, period: Period) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())  # Monday
    if period == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def _next_start(day: date, period: Period) -> date:
    if period == "day":
        return day + timedelta(days=1)
    if period == "week":
        return day + timedelta(days=7)
    if period == "month":
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return date(day.year + 1, 1, 1)


def _local_midnight(day: date, tz: ZoneInfo) -> int:
    # Where midnight does not exist (a change at 00:00), zoneinfo maps it with the offset
    # before the change, which is the instant the new day begins.
    return round(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def boundaries(period: Period, start_s: float, end_s: float, tz: ZoneInfo) -> list[int]:
    """Period starts from the one holding ``start_s`` to the first at or after ``end_s``."""
    day = _period_start(datetime.fromtimestamp(start_s, tz).date(), period)
    out = [_local_midnight(day, tz)]
    while out[-1] < end_s:
        if len(out) > MAX_PERIODS:
            raise ValueError(f"more than {MAX_PERIODS} periods: ask for a shorter range")
        day = _next_start(day, period)
        out.append(_local_midnight(day, tz))
    return out


def alignment_tier(resolutions: Sequence[int], bounds: Sequence[int]) -> int:
    """Index of the coarsest tier whose resolution divides every boundary (else the finest)."""
    for k in range(len(resolutions) - 1, -1, -1):
        if all(b % resolutions[k] == 0 for b in bounds):
            return k
    return 0


def check_arguments(period: str, start_s: float, end_s: float, tz: object) -> None:
    """Raise ValueError with a clear message on arguments no query can answer."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise ValueError(f"start and end must be finite times, got {start_s!r} and {end_s!r}")
    if start_s >= end_s:
        raise ValueError(f"start ({start_s}) must be before end ({end_s})")
    if not isinstance(tz, ZoneInfo):
        raise ValueError(f"tz must be a zoneinfo.ZoneInfo, got {tz!r}")


class _Steps:
    """A counter's cumulative positive steps over its logged values, by bucket end."""

    def __init__(self, ends: IntArray, values: FloatArray) -> None:
        ok = np.isfinite(values)
        self.ends = ends[ok]
        x = values[ok]
        steps = np.maximum(np.diff(x), 0.0)
        self.total = np.concatenate(([0.0], np.cumsum(steps)))

    def at(self, t: float) -> float | None:
        """Steps up to the last value logged at or before ``t``; None if there is none."""
        i = int(np.searchsorted(self.ends, t, side="right")) - 1
        return float(self.total[i]) if i >= 0 else None


def query(
    view: LogView,
    load: str,
    period: Period,
    *,
    start_s: float,
    end_s: float,
    tz: ZoneInfo,
) -> list[EnergyPeriod]:
    """Energy of every period overlapping [start_s, end_s) (see the module docstring).

    Periods before the first or after the latest logged value are left out.
    """
    check_arguments(period, start_s, end_s, tz)
    load_id = view.catalog.load_id(view.conn, load)
    if load_id is None:
        raise ValueError(f"no data logged for load {load!r}")
    bounds = boundaries(period, start_s, end_s, tz)
    k = alignment_tier(view.resolutions, bounds)
    names = frozenset(ENERGY_TOTALS)
    span = read_span(view, load_id, tier=k, start_s=bounds[0], end_s=bounds[-1], names=names)
    # The value the first period starts from: the last one before it, or else (logging began
    # within the range) the very first logged value, from whichever tier still holds it.
    before = _last_row_before(view, load_id, bounds[0], names) or _first_row(view, load_id, names)
    if before is not None and len(span.block) and before[1] >= span.end_s[0]:
        before = None
    if before is None:
        block, ends = span.block, span.end_s
    else:
        block = concatenate([before[0], span.block])
        ends = np.concatenate(([before[1]], span.end_s))
    if not len(block):
        return []
    latest = int(ends.max())
    first = int(ends.min())
    steps = {
        name: _Steps(ends, values)
        for name in ENERGY_TOTALS
        if (values := block.counter(name)) is not None
    }
    out = []
    for b1, b2 in itertools.pairwise(bounds):
        if b1 >= latest or first > b2:
            continue
        energy: dict[str, float] = {}
        for name, s in steps.items():
            end_value = s.at(min(b2, latest))
            if end_value is None:
                continue
            start_value = s.at(b1)
            energy[name] = round(end_value - (start_value or 0.0), DECIMALS)
        out.append(EnergyPeriod(float(b1), float(b2), energy, b2 <= latest and first <= b1))
    return out


def _last_row_before(
    view: LogView, load_id: int, t: int, names: frozenset[str]
) -> tuple[RowBlock, int] | None:
    """The row, of any tier, ending last at or before ``t``, with its end."""
    best = None
    best_end = -1
    for r in view.resolutions:
        row = tables.last_row_before(view.conn, r, load_id, t)
        if row is not None and row[0] + r > best_end:
            best, best_end = row, row[0] + r
    if best is None:
        return None
    return decode([best], view.catalog.layouts(view.conn, {best[1]}), names), best_end


def _first_row(view: LogView, load_id: int, names: frozenset[str]) -> tuple[RowBlock, int] | None:
    """The row, of any tier, ending first."""
    best = None
    best_end = 0
    for r in view.resolutions:
        bounds = tables.bucket_bounds(view.conn, r, load_id)
        if bounds is not None and (best is None or bounds[0] + r < best_end):
            best, best_end = (r, bounds[0]), bounds[0] + r
    if best is None:
        return None
    r, bucket = best
    rows = tables.fetch(view.conn, r, load_id, bucket, bucket + 1)
    return decode(rows, view.catalog.layouts(view.conn, {rows[0][1]}), names), best_end
