"""Energy per calendar period from counter differences, across DST, resets and running periods."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from log_readings import FakeClock, config, open_store, reading

from emsbox.store.energy_periods import alignment_tier, boundaries

ROME = ZoneInfo("Europe/Rome")
UTC = ZoneInfo("UTC")


def at(tz: ZoneInfo, *ymd_h: int) -> int:
    """Epoch seconds of a local time."""
    return round(datetime(*ymd_h, tzinfo=tz).timestamp())


def minutes_store(tmp_path, start: int, stop: int, kwh_per_minute: float = 0.001):
    """Minute readings from ``start`` to ``stop``: kwh_imp grows by ``kwh_per_minute``.

    The counter at the end of minute i is (i + 1) × kwh_per_minute: the energy of any span
    of whole logged minutes is exactly their number × kwh_per_minute.
    """
    store = open_store(tmp_path / "log.db", config((60, None), (3600, None)), FakeClock(start))
    for i in range((stop - start) // 60):
        store.submit(
            reading(
                start + 60 * (i + 1),
                {"p_sys": 60.0},
                {"kwh_imp": (i + 1) * kwh_per_minute, "kwh_exp": 7.0},
                duration=60.0,
            )
        )
    store.flush()
    return store


def hours_store(tmp_path, start: int, values, cfg=None):
    """Hour readings from ``start`` with the given kwh_imp end values."""
    cfg = cfg or config((3600, None), (86400, None))
    store = open_store(tmp_path / "log.db", cfg, FakeClock(start))
    for i, v in enumerate(values):
        store.submit(reading(start + 3600 * (i + 1), {"p_sys": 1.0}, {"kwh_imp": v}, duration=3600))
    store.flush()
    return store


def test_day_boundaries_follow_local_midnight_across_dst_changes():
    spring = boundaries("day", at(ROME, 2024, 3, 30, 12), at(ROME, 2024, 4, 1, 12), ROME)
    assert np.diff(spring).tolist() == [86400, 23 * 3600, 86400]
    autumn = boundaries("day", at(ROME, 2024, 10, 26), at(ROME, 2024, 10, 28), ROME)
    assert np.diff(autumn).tolist() == [86400, 25 * 3600]
    weeks = boundaries("week", at(ROME, 2024, 3, 30), at(ROME, 2024, 4, 2), ROME)
    assert weeks == [at(ROME, 2024, 3, 25), at(ROME, 2024, 4, 1), at(ROME, 2024, 4, 8)]
    assert boundaries("month", at(ROME, 2024, 12, 5), at(ROME, 2025, 1, 2), ROME) == [
        at(ROME, 2024, 12, 1),
        at(ROME, 2025, 1, 1),
        at(ROME, 2025, 2, 1),
    ]
    assert boundaries("year", at(UTC, 2024, 5, 1), at(UTC, 2024, 6, 1), UTC) == [
        at(UTC, 2024, 1, 1),
        at(UTC, 2025, 1, 1),
    ]


@pytest.mark.parametrize(
    ("zone", "tier"),
    [
        ("Europe/Rome", 3),
        ("UTC", 4),
        ("Asia/Kolkata", 2),
        ("Asia/Kathmandu", 2),
        ("America/St_Johns", 2),
        ("Australia/Eucla", 2),
    ],
)
def test_boundaries_are_read_from_the_coarsest_tier_that_divides_them(zone, tier):
    tz = ZoneInfo(zone)
    days = boundaries("day", at(tz, 2024, 1, 1), at(tz, 2024, 12, 31), tz)
    assert alignment_tier([1, 60, 900, 3600, 86400], days) == tier


@pytest.mark.parametrize(
    ("change_day", "hours"), [(date(2024, 3, 31), 23), (date(2024, 10, 27), 25)]
)
def test_daily_energy_across_a_dst_change_in_rome(tmp_path, change_day, hours):
    def midnight(offset_days: int) -> int:
        d = change_day + timedelta(days=offset_days)
        return at(ROME, d.year, d.month, d.day)

    store = minutes_store(tmp_path, midnight(-2), midnight(2) + 12 * 3600)
    periods = store.energy("main", "day", midnight(-1), midnight(3), ROME)
    assert [p.start_s for p in periods] == [midnight(i) for i in (-1, 0, 1, 2)]
    assert [(p.end_s - p.start_s) / 3600 for p in periods] == [24, hours, 24, 24]
    assert [p.values["kwh_imp"] for p in periods] == [1.44, hours * 0.06, 1.44, 0.72]
    assert [p.values["kwh_exp"] for p in periods] == [0.0] * 4
    assert [p.complete for p in periods] == [True, True, True, False]
    store.close()


def test_the_period_logging_began_in_starts_from_the_first_logged_value(tmp_path):
    start = at(ROME, 2024, 5, 10, 6)
    store = minutes_store(tmp_path, start, at(ROME, 2024, 5, 11, 6))
    periods = store.energy("main", "day", start - 86400, start + 86400, ROME)
    # The first minute's own increment happened before its value was logged.
    assert [p.values["kwh_imp"] for p in periods] == [round(1079 * 0.001, 6), 0.36]
    assert [p.complete for p in periods] == [False, False]
    store.close()


def test_a_range_without_data_gives_no_periods(tmp_path):
    store = minutes_store(tmp_path, at(ROME, 2024, 5, 10), at(ROME, 2024, 5, 11))
    assert store.energy("main", "day", at(ROME, 2024, 6, 1), at(ROME, 2024, 6, 5), ROME) == []
    assert store.energy("main", "day", at(ROME, 2024, 4, 1), at(ROME, 2024, 4, 5), ROME) == []
    store.close()


def test_monthly_and_yearly_energy_from_hourly_counters(tmp_path):
    start = at(ROME, 2023, 12, 1)
    stop = at(ROME, 2025, 1, 15)
    n = (stop - start) // 3600
    # 1 kWh per hour: a period's energy is its number of hours.
    store = hours_store(tmp_path, start, np.arange(1, n + 1, dtype=float))
    months = store.energy("main", "month", at(ROME, 2024, 1, 1), at(ROME, 2025, 1, 20), ROME)
    assert len(months) == 13
    for p in months:
        hours = (p.end_s - p.start_s) / 3600
        assert p.values["kwh_imp"] == (hours if p.complete else 14 * 24)
    march, october = months[2], months[9]
    assert (march.values["kwh_imp"], october.values["kwh_imp"]) == (743, 745)
    years = store.energy("main", "year", at(ROME, 2024, 6, 1), at(ROME, 2025, 6, 1), ROME)
    assert [(p.values["kwh_imp"], p.complete) for p in years] == [(8784, True), (336, False)]
    # In UTC the boundaries are whole days: the day tier serves them, with the same energy.
    utc = store.energy("main", "month", at(UTC, 2024, 2, 1), at(UTC, 2024, 3, 1), UTC)
    assert [p.values["kwh_imp"] for p in utc] == [29 * 24]
    store.close()


def test_a_week_runs_from_monday(tmp_path):
    start = at(ROME, 2024, 3, 18)
    store = hours_store(tmp_path, start, np.arange(1, 24 * 28, dtype=float))
    weeks = store.energy("main", "week", at(ROME, 2024, 3, 27), at(ROME, 2024, 4, 2), ROME)
    assert [p.start_s for p in weeks] == [at(ROME, 2024, 3, 25), at(ROME, 2024, 4, 1)]
    assert [p.values["kwh_imp"] for p in weeks] == [7 * 24 - 1, 7 * 24]  # 23 h Sunday
    store.close()


def test_a_counter_going_backwards_never_gives_negative_energy(tmp_path):
    start = at(ROME, 2024, 5, 1)
    rng = np.random.default_rng(5)
    steps = rng.uniform(0.0, 2.0, 24 * 4)
    values = 5000.0 + np.cumsum(steps)
    values[30:] -= values[29] - 0.25  # meter replaced in hour 30: it restarts from 0.25
    values[70:] = values[70:] - 100.0  # counters lost again, going below zero
    store = hours_store(tmp_path, start, values)
    days = store.energy("main", "day", start, start + 4 * 86400, ROME)
    assert [p.complete for p in days] == [False, True, True, True]
    # Positive steps between consecutive hourly values, counted in the day they end in.
    increments = np.maximum(np.diff(values), 0.0)
    expected = [increments[24 * d - 1 : 24 * (d + 1) - 1].sum() for d in range(4)]
    expected[0] = increments[:23].sum()
    assert [p.values["kwh_imp"] for p in days] == pytest.approx(expected, abs=1e-6)
    assert all(p.values["kwh_imp"] >= 0.0 for p in days)
    store.close()


def test_energy_refuses_bad_arguments(tmp_path):
    store = minutes_store(tmp_path, at(ROME, 2024, 5, 10), at(ROME, 2024, 5, 10, 1))
    t = at(ROME, 2024, 5, 10)
    with pytest.raises(ValueError, match="no data logged for load 'x'"):
        store.energy("x", "day", t, t + 10, ROME)
    with pytest.raises(ValueError, match="period must be one of"):
        store.energy("main", "fortnight", t, t + 10, ROME)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="before end"):
        store.energy("main", "day", t, t, ROME)
    with pytest.raises(ValueError, match="ZoneInfo"):
        store.energy("main", "day", t, t + 10, "Europe/Rome")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="periods"):
        store.energy("main", "day", 0, 4e9, ROME)
    store.close()


def test_a_day_whose_midnight_does_not_exist_begins_at_the_change():
    # São Paulo, 2018-11-04: clocks jumped from 00:00 to 01:00.
    tz = ZoneInfo("America/Sao_Paulo")
    days = boundaries("day", at(tz, 2018, 11, 3, 12), at(tz, 2018, 11, 4, 12), tz)
    assert days[1] == at(UTC, 2018, 11, 4, 3)  # 01:00 local, the first instant of the day
    assert np.diff(days).tolist() == [24 * 3600, 23 * 3600]
