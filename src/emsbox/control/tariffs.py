"""Tariffs by calendar: tariff 1 or 2 from a weekly time-of-use schedule with holidays.

Times are the site's local wall-clock times (its IANA time zone), so a period from 08:00 to
19:00 starts at 08:00 on both sides of a change to or from daylight saving time. A period
whose end is not after its start runs over midnight (22:00–06:00 on Friday runs into Saturday
morning); its days are the days it starts on. On a holiday only the holiday's tariff applies,
all day. Outside every period the default tariff applies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Period:
    """A time of day, on some days of the week, with its tariff."""

    days: frozenset[int]  # 0 = Monday
    start: dt.time
    end: dt.time
    tariff: int

    def covers(self, local: dt.datetime) -> bool:
        """Whether the local wall-clock time ``local`` falls in this period."""
        t = local.time().replace(tzinfo=None)
        day = local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= t < self.end
        # Over midnight: from start on its day, and until end on the next day.
        yesterday = (day - 1) % 7
        return (day in self.days and t >= self.start) or (yesterday in self.days and t < self.end)


@dataclass(frozen=True)
class Holiday:
    """A whole day with its own tariff: one date, or the same day every year."""

    month: int
    day: int
    year: int | None = None

    def is_on(self, date: dt.date) -> bool:
        """Whether ``date`` is this holiday."""
        return (date.month, date.day) == (self.month, self.day) and self.year in (None, date.year)


@dataclass(frozen=True)
class TariffCalendar:
    """The weekly schedule with its holidays, in one time zone."""

    zone: ZoneInfo
    periods: Sequence[Period]
    holidays: Sequence[Holiday]
    default_tariff: int = 1
    holiday_tariff: int = 2

    def tariff_at(self, t_s: float) -> int:
        """The tariff at Unix time ``t_s``."""
        local = dt.datetime.fromtimestamp(t_s, self.zone)
        if any(h.is_on(local.date()) for h in self.holidays):
            return self.holiday_tariff
        for period in self.periods:
            if period.covers(local):
                return period.tariff
        return self.default_tariff
