"""History queries: the best tier, downsampling, tiers meeting in one range, bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from log_readings import T0, FakeClock, open_store, reading

from emsbox.store.config import StoreConfig
from emsbox.store.coverage import Segment, plan
from emsbox.store.history import choose_tier

RES = [1, 60, 900, 3600]


@pytest.mark.parametrize(
    ("width", "tier"),
    [
        (0.01, 0),
        (0.99, 0),
        (1.0, 0),
        (59.9, 0),
        (60.0, 1),
        (899.0, 1),
        (900.0, 2),
        (3599.0, 2),
        (3600.0, 3),
        (86400.0 * 365, 3),
    ],
)
def test_the_best_tier_is_the_coarsest_not_wider_than_a_point(width, tier):
    assert choose_tier(RES, width) == tier


def test_plan_prefers_one_tier_and_fills_older_and_newer_parts_from_others():
    # Oldest and newest bucket starts: retention left the 1 s tier from 7500 and the 60 s
    # tier from 4500 (whole buckets of the next tier); every tier has data up to 10800.
    bounds = [(7500, 10799), (4500, 10740), (0, 9900), (0, 7200)]
    # Each older part starts on a boundary of the next coarser tier, so its rows are whole.
    assert plan(bounds, RES, 0, 0, 10800) == [
        Segment(2, 0, 4500),
        Segment(1, 4500, 7500),
        Segment(0, 7500, 10800),
    ]
    assert plan(bounds, RES, 3, 0, 14400) == [Segment(3, 0, 10800)]
    assert plan(bounds, RES, 1, 8000, 9000) == [Segment(1, 8000, 9000)]


def test_plan_reads_the_newest_part_from_finer_tiers():
    # The hour tier ends at 3600, the 900 s and 60 s tiers at 5400, the 1 s tier at 5437.
    bounds = [(0, 5436), (0, 5340), (0, 4500), (0, 0)]
    assert plan(bounds, RES, 3, 0, 7200) == [
        Segment(3, 0, 3600),
        Segment(2, 3600, 7200),
        Segment(0, 5400, 7200),
    ]


def test_plan_keeps_the_oldest_rows_of_a_tier_the_coarser_one_does_not_hold():
    # A minute old store: the 1 s tier starts mid-minute, nothing is rolled up yet.
    assert plan([(190, 197), None, None, None], RES, 0, 138, 198) == [Segment(0, 190, 198)]
    # Logging began mid-minute: the minute tier's first row sums up the same 1 s rows.
    bounds = [(190, 400), (180, 360), None, None]
    assert plan(bounds, RES, 0, 0, 401) == [Segment(0, 190, 401)]
    # Retention deleted whole minutes of the 1 s tier; the minute tier serves those.
    bounds = [(240, 400), (180, 360), None, None]
    assert plan(bounds, RES, 0, 0, 401) == [Segment(1, 180, 240), Segment(0, 240, 401)]


def test_plan_with_an_empty_preferred_tier_uses_the_others():
    bounds = [(100, 200), None, None, None]
    assert plan(bounds, RES, 3, 0, 1000) == [Segment(0, 0, 1000)]
    assert plan([None, None, None, None], RES, 1, 0, 1000) == []


class Raw:
    """1 s readings from T0 (duration 1 s), power and an energy counter from a seed."""

    def __init__(self, seconds: int, seed: int = 7, gap: range | None = None) -> None:
        rng = np.random.default_rng(seed)
        self.second = np.array([s for s in range(seconds) if gap is None or s not in gap])
        n = len(self.second)
        self.p = 500.0 + rng.uniform(-200.0, 200.0, n)
        self.low = self.p - rng.uniform(0.0, 20.0, n)
        self.high = self.p + rng.uniform(0.0, 20.0, n)
        self.kwh = 10.0 + np.cumsum(rng.uniform(0.0, 0.002, n))

    def submit(self, store) -> None:
        for i, s in enumerate(self.second):
            store.submit(
                reading(
                    T0 + s + 1,
                    {"p_sys": self.p[i]},
                    {"kwh_imp": self.kwh[i]},
                    minimum={"p_sys": self.low[i]},
                    maximum={"p_sys": self.high[i]},
                )
            )


@pytest.fixture(scope="module")
def two_hours(tmp_path_factory):
    path = tmp_path_factory.mktemp("history") / "log.db"
    raw = Raw(7200)
    store = open_store(path, StoreConfig(), FakeClock(T0))
    raw.submit(store)
    store.close()
    store = open_store(path, StoreConfig(), FakeClock(T0))
    yield store, raw
    store.close()


@pytest.mark.parametrize(
    ("seconds", "points", "tier"),
    [(3600, 3600, 1), (3600, 7000, 1), (3600, 60, 60), (7200, 8, 900), (7200, 2, 3600)],
)
def test_history_reads_the_best_tier(two_hours, seconds, points, tier):
    store, _ = two_hours
    h = store.history("main", ["p_sys"], T0, T0 + seconds, points)
    assert h.load == "main" and h.tier_resolution_s == tier
    s = h.series["p_sys"]
    assert len(s.t) == min(points, seconds // tier)


@pytest.mark.parametrize("points", [12, 7, 1])
def test_history_downsamples_to_n_points_with_the_right_mean_and_extremes(two_hours, points):
    store, raw = two_hours
    h = store.history("main", ["p_sys", "kwh_imp"], T0, T0 + 3600, points)
    assert h.tier_resolution_s == (60 if points > 1 else 3600)
    width = 3600 / points
    # Rows (minutes, or the hour) fall in the point holding their start.
    row = raw.second[raw.second < 3600] // h.tier_resolution_s * h.tier_resolution_s
    point = np.floor(row / width).astype(int)
    p, kwh = h.series["p_sys"], h.series["kwh_imp"]
    assert list(p.t) == [T0 + i * width for i in range(points)]
    for i in range(points):
        sel = point == i
        assert p.avg[i] == pytest.approx(np.mean(raw.p[: len(sel)][sel]), rel=1e-6)
        assert p.min[i] == np.float32(raw.low[: len(sel)][sel]).min()
        assert p.max[i] == np.float32(raw.high[: len(sel)][sel]).max()
        # Counters: the last end value, and the least and greatest row end values.
        ends = raw.kwh[: len(sel)][sel][h.tier_resolution_s - 1 :: h.tier_resolution_s]
        assert (kwh.avg[i], kwh.min[i], kwh.max[i]) == (ends[-1], ends[0], ends[-1])


def test_the_newest_part_not_yet_rolled_up_comes_from_finer_tiers(tmp_path):
    raw = Raw(5400 + 37)
    store = open_store(tmp_path / "log.db", StoreConfig(), FakeClock(T0))
    raw.submit(store)
    store.flush()
    h = store.history("main", ["p_sys", "kwh_imp"], T0, T0 + 7200, 2)
    assert h.tier_resolution_s == 3600
    p = h.series["p_sys"]
    assert list(p.t) == [T0, T0 + 3600]
    assert p.avg[1] == pytest.approx(np.mean(raw.p[3600:]), rel=1e-6)
    assert h.series["kwh_imp"].avg[1] == raw.kwh[-1]
    store.close()


def test_empty_buckets_are_left_out(tmp_path):
    raw = Raw(600, gap=range(120, 360))
    store = open_store(tmp_path / "log.db", StoreConfig(), FakeClock(T0))
    raw.submit(store)
    store.flush()
    s = store.history("main", ["p_sys"], T0, T0 + 600, 10).series["p_sys"]
    assert list(s.t) == [T0 + 60 * i for i in (0, 1, 6, 7, 8, 9)]
    assert not np.isnan(s.avg).any()
    store.close()


def test_a_range_before_any_data_gives_empty_series(two_hours):
    store, _ = two_hours
    s = store.history("main", ["p_sys"], T0 - 7200, T0, 100).series["p_sys"]
    assert len(s.t) == len(s.avg) == 0


@pytest.mark.parametrize(
    ("load", "names", "start", "end", "points", "message"),
    [
        ("nobody", ["p_sys"], T0, T0 + 60, 10, "no data logged for load 'nobody'"),
        ("main", ["p_sys", "watts"], T0, T0 + 60, 10, "unknown variable 'watts'"),
        ("main", [], T0, T0 + 60, 10, "at least one variable"),
        ("main", "p_sys", T0, T0 + 60, 10, "not one string"),
        ("main", ["p_sys"], T0 + 60, T0 + 60, 10, "must be before end"),
        ("main", ["p_sys"], T0 + 61, T0 + 60, 10, "must be before end"),
        ("main", ["p_sys"], math.nan, T0 + 60, 10, "finite"),
        ("main", ["p_sys"], T0, T0 + 60, 0, "between 1 and 10000"),
        ("main", ["p_sys"], T0, T0 + 60, 10_001, "between 1 and 10000"),
        ("main", ["p_sys"], T0, T0 + 60, 2.5, "whole number"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(
    two_hours, load, names, start, end, points, message
):
    store, _ = two_hours
    with pytest.raises(ValueError, match=message):
        store.history(load, names, start, end, points)


def test_a_store_younger_than_a_minute_answers_from_its_first_tier(tmp_path):
    store = open_store(tmp_path / "log.db", StoreConfig(), FakeClock(T0))
    store.start()
    for i in range(30, 50):
        store.submit(reading(T0 + i + 1, {"p_sys": float(i)}))
    store.flush()
    s = store.history("main", ["p_sys"], T0 + 0.4, T0 + 60.4, 20).series["p_sys"]
    # Points start at T0 + 0.4 + 3i; a row falls in the point holding its start.
    assert list(s.avg) == [30.0, *(32.0 + 3 * i for i in range(6)), 49.0]
    store.close()
