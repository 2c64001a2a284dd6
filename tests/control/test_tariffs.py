"""Tariffs by calendar: weekly periods in local time across both daylight-saving changes,
periods over midnight, holidays, the settings' checks, and the controller following it."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import Future
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsbox.bus import Bus
from emsbox.config import ConfigError, validate
from emsbox.control.config import IoConfig, TariffsConfig
from emsbox.control.controller import Controller

ROME = ZoneInfo("Europe/Rome")


def utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


def calendar(**settings_):
    return TariffsConfig.model_validate({"calendar": True, **settings_}).calendar_in(ROME)


WEEKDAYS = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "19:00"}


def test_a_weekday_period_starts_at_local_time_on_both_sides_of_the_spring_change():
    cal = calendar(periods=[WEEKDAYS | {"tariff": 1}], default_tariff=2)
    # Friday 27 March 2026, CET (UTC+1): 08:00 local is 07:00 UTC.
    assert cal.tariff_at(utc(2026, 3, 27, 6, 59, 59)) == 2
    assert cal.tariff_at(utc(2026, 3, 27, 7, 0, 0)) == 1
    assert cal.tariff_at(utc(2026, 3, 27, 17, 59, 59)) == 1
    assert cal.tariff_at(utc(2026, 3, 27, 18, 0, 0)) == 2
    # The weekend: the default.
    assert cal.tariff_at(utc(2026, 3, 28, 10, 0, 0)) == 2
    # Monday 30 March 2026, CEST (UTC+2): 08:00 local is 06:00 UTC.
    assert cal.tariff_at(utc(2026, 3, 30, 5, 59, 59)) == 2
    assert cal.tariff_at(utc(2026, 3, 30, 6, 0, 0)) == 1
    assert cal.tariff_at(utc(2026, 3, 30, 17, 0, 0)) == 2


def test_a_night_period_spans_the_short_and_the_long_night():
    night = {"days": ["sat"], "start": "22:00", "end": "06:00", "tariff": 2}
    cal = calendar(periods=[night], default_tariff=1)
    # Spring: Saturday 28 March 22:00 CET (21:00 UTC) to Sunday 06:00 CEST (04:00 UTC): 7 h.
    assert cal.tariff_at(utc(2026, 3, 28, 20, 59, 59)) == 1
    assert cal.tariff_at(utc(2026, 3, 28, 21, 0, 0)) == 2
    assert cal.tariff_at(utc(2026, 3, 29, 1, 30, 0)) == 2  # just after the change
    assert cal.tariff_at(utc(2026, 3, 29, 3, 59, 59)) == 2
    assert cal.tariff_at(utc(2026, 3, 29, 4, 0, 0)) == 1
    # Autumn: Saturday 24 October 22:00 CEST (20:00 UTC) to Sunday 06:00 CET (05:00 UTC): 9 h.
    assert cal.tariff_at(utc(2026, 10, 24, 19, 59, 59)) == 1
    assert cal.tariff_at(utc(2026, 10, 24, 20, 0, 0)) == 2
    assert cal.tariff_at(utc(2026, 10, 25, 0, 30, 0)) == 2  # 02:30 CEST, the first time
    assert cal.tariff_at(utc(2026, 10, 25, 1, 30, 0)) == 2  # 02:30 CET, the second time
    assert cal.tariff_at(utc(2026, 10, 25, 4, 59, 59)) == 2
    assert cal.tariff_at(utc(2026, 10, 25, 5, 0, 0)) == 1
    # The night period starts on Saturdays only: Sunday night is the default.
    assert cal.tariff_at(utc(2026, 10, 25, 22, 0, 0)) == 1


def test_holidays_take_the_whole_day_recurring_or_once():
    cal = calendar(
        periods=[WEEKDAYS | {"tariff": 1}],
        default_tariff=2,
        holidays=["12-25", "2026-04-06"],
        holiday_tariff=2,
    )
    # Friday 25 December 2026, 10:00 CET: a weekday period, but Christmas.
    assert cal.tariff_at(utc(2026, 12, 25, 9, 0, 0)) == 2
    assert cal.tariff_at(utc(2027, 12, 24, 9, 0, 0)) == 1  # Friday 24 December 2027
    # Easter Monday 2026 is a holiday; the same date in 2027 is a plain Tuesday.
    assert cal.tariff_at(utc(2026, 4, 6, 9, 0, 0)) == 2
    assert cal.tariff_at(utc(2027, 4, 6, 9, 0, 0)) == 1
    # The holiday is the local day: 23:30 UTC on 24 December is already Christmas in Rome.
    assert cal.tariff_at(utc(2026, 12, 24, 23, 30, 0)) == 2


def test_an_end_equal_to_the_start_is_the_whole_day_and_00_00_is_midnight():
    cal = calendar(
        periods=[
            {"days": ["sun"], "start": "00:00", "end": "00:00", "tariff": 2},
            {"days": ["sat"], "start": "13:00", "end": "00:00", "tariff": 2},
        ],
        default_tariff=1,
    )
    assert cal.tariff_at(utc(2026, 6, 7, 21, 59, 0)) == 2  # Sunday 23:59 CEST
    assert cal.tariff_at(utc(2026, 6, 7, 22, 0, 0)) == 1  # Monday 00:00
    assert cal.tariff_at(utc(2026, 6, 6, 10, 59, 0)) == 1  # Saturday 12:59
    assert cal.tariff_at(utc(2026, 6, 6, 11, 0, 0)) == 2  # Saturday 13:00


@pytest.mark.parametrize(
    ("tariffs", "where"),
    [
        ({"periods": [WEEKDAYS | {"tariff": 3}]}, "tariffs.periods[0].tariff"),
        ({"periods": [WEEKDAYS | {"start": "24:00", "tariff": 1}]}, "tariffs.periods[0].start"),
        ({"periods": [WEEKDAYS | {"end": "7:5", "tariff": 1}]}, "tariffs.periods[0].end"),
        ({"periods": [WEEKDAYS | {"days": ["mon", "funday"], "tariff": 1}]}, "tariffs.periods"),
        ({"periods": [WEEKDAYS | {"days": [], "tariff": 1}]}, "tariffs.periods[0].days"),
        ({"holidays": ["02-30"]}, "tariffs.holidays"),
        ({"holidays": ["2026-13-01"]}, "tariffs.holidays"),
        ({"holidays": ["Christmas"]}, "tariffs.holidays"),
    ],
)
def test_wrong_settings_are_refused_at_their_key(tariffs, where):
    with pytest.raises(ConfigError) as refused:
        validate({"tariffs": tariffs})
    assert any(p.startswith(where) for p in refused.value.problems), refused.value.problems


def test_the_29th_of_february_is_a_holiday_every_leap_year():
    cal = calendar(holidays=["02-29"], default_tariff=1, holiday_tariff=2)
    assert cal.tariff_at(utc(2028, 2, 29, 12, 0, 0)) == 2


def test_the_calendar_and_a_tariff_input_cannot_both_set_the_tariff():
    with pytest.raises(ConfigError) as refused:
        validate({"tariffs": {"calendar": True}, "io": {"input_function": "tariff"}})
    assert refused.value.problems == [
        "tariffs.calendar: the tariff follows either the calendar or the digital input, not both"
    ]


@settings(max_examples=300, deadline=None)
@given(t=st.integers(utc(2026, 1, 1, 0, 0, 0), utc(2027, 12, 31, 0, 0, 0)))
def test_the_tariff_follows_the_local_wall_clock(t):
    cal = calendar(periods=[WEEKDAYS | {"tariff": 1}], default_tariff=2)
    local = dt.datetime.fromtimestamp(t, ROME)
    weekday_day = local.weekday() < 5 and dt.time(8) <= local.time() < dt.time(19)
    assert cal.tariff_at(t) == (1 if weekday_day else 2)


class Commands:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int | None, str]] = []

    def __call__(self, load: str, action: str, tariff: int | None, by: str) -> Future[object]:
        self.calls.append((load, action, tariff, by))
        done: Future[object] = Future()
        done.set_result({})
        return done


def test_the_controller_sets_every_load_to_the_calendars_tariff_as_it_changes(tmp_path):
    now = [utc(2026, 3, 27, 6, 59, 58)]  # Friday, two seconds before 08:00 in Rome
    commands = Commands()
    controller = Controller(Bus(), commands, tmp_path, clock=lambda: now[0])
    cal = calendar(periods=[WEEKDAYS | {"tariff": 1}], default_tariff=2)
    controller.apply(IoConfig(), "main", loads=("main", "hvac"), calendar=cal)
    try:
        deadline = time.monotonic() + 5
        while len(commands.calls) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert commands.calls == [
            ("main", "tariff", 2, "tariff calendar"),
            ("hvac", "tariff", 2, "tariff calendar"),
        ]
        time.sleep(1.2)
        assert len(commands.calls) == 2  # unchanged: nothing more is sent
        now[0] += 2.0  # 08:00
        while len(commands.calls) < 4:
            assert time.monotonic() < deadline + 5
            time.sleep(0.01)
        assert commands.calls[2:] == [
            ("main", "tariff", 1, "tariff calendar"),
            ("hvac", "tariff", 1, "tariff calendar"),
        ]
    finally:
        controller.stop()
