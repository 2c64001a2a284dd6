"""The first tier: readings into buckets, bad values, absent variables, merges of a bucket."""

from __future__ import annotations

import numpy as np
import pytest
from log_readings import (
    T0,
    FakeClock,
    close_to,
    config,
    f32,
    open_store,
    reading,
    rows,
    weighted,
)

from emsbox.samples import Wiring
from emsbox.store.log import StoreError

TEN_S = config((10, None), (60, None))


def one_bucket(store, name):
    """avg, min, max (or last, min, max of a counter) of the one 10 s bucket at T0."""
    h = store.history("main", [name], T0, T0 + 10, 1)
    s = h.series[name]
    assert len(s.t) == 1 and s.t[0] == T0
    return float(s.avg[0]), float(s.min[0]), float(s.max[0])


def test_a_bucket_holds_the_duration_weighted_mean_the_extremes_and_the_last_counter(tmp_path):
    store = open_store(tmp_path / "log.db", TEN_S)
    durations = np.array([1.0, 2.5, 0.5, 3.0])
    p = np.array([100.0, 200.0, -50.0, 400.0])
    ends = T0 + np.cumsum(durations)
    for i in range(4):
        store.submit(
            reading(
                ends[i],
                {"p_sys": p[i], "v_l1": 230.0 + i},
                {"kwh_imp": 10.0 + i / 1000, "hours_on": 5.5 + i},
                duration=durations[i],
                minimum={"p_sys": p[i] - 10, "v_l1": 229.0},
                maximum={"p_sys": p[i] + 10 * i, "v_l1": 231.0 + i},
                tariff=1 + (i == 3),
            )
        )
    store.close()
    store = open_store(tmp_path / "log.db", TEN_S)
    avg, low, high = one_bucket(store, "p_sys")
    assert close_to(avg, weighted(p, durations))
    assert low == f32(-60.0) and high == f32(430.0)
    assert one_bucket(store, "kwh_imp") == (10.003, 10.003, 10.003)  # one end value
    assert one_bucket(store, "hours_on")[0] == 8.5
    tariff = one_bucket(store, "tariff")
    assert close_to(tariff[0], 1 + 3.0 / 7.0) and tariff[1:] == (1.0, 2.0)
    assert rows(tmp_path / "log.db", 10)[0][2] == 7_000_000  # covered µs
    store.close()


def test_a_reading_belongs_to_the_bucket_holding_its_middle(tmp_path):
    store = open_store(tmp_path / "log.db", TEN_S)
    # Ends exactly on the next bucket's start: measured in the bucket before.
    store.submit(reading(T0 + 10, {"p_sys": 1.0}, duration=1.0))
    store.submit(reading(T0 + 10.4, {"p_sys": 2.0}, duration=1.0))  # middle T0 + 9.9
    store.submit(reading(T0 + 11, {"p_sys": 3.0}, duration=1.0))  # middle T0 + 10.5
    store.close()
    assert [r[1] for r in rows(tmp_path / "log.db", 10)] == [T0, T0 + 10]


def test_not_finite_values_are_left_out_and_never_stop_the_writer(tmp_path):
    store = open_store(tmp_path / "log.db", TEN_S)
    store.start()
    store.submit(reading(T0 + 1, {"p_sys": 100.0, "v_l1": float("nan")}, {"kwh_imp": 1.0}))
    store.submit(
        reading(T0 + 2, {"p_sys": float("inf"), "v_l1": float("nan")}, {"kwh_imp": float("nan")})
    )
    store.submit(reading(T0 + 3, {"p_sys": 300.0, "v_l1": float("-inf")}, {"kwh_imp": 1.5}))
    store.submit(reading(T0 + 12, {"p_sys": 1e39, "v_l1": 230.0}, {"kwh_imp": 2.0}))
    store.flush()
    h = store.history("main", ["p_sys", "v_l1", "kwh_imp"], T0, T0 + 20, 2)
    assert list(h.series["p_sys"].avg) == [200.0]  # 1e39 overflows float32: no value
    assert list(h.series["v_l1"].t) == [T0 + 10]
    assert list(h.series["kwh_imp"].avg) == [1.5, 2.0]
    assert store.stats().last_error is None
    store.close()


def test_a_reading_without_a_usable_time_is_skipped_and_reported(tmp_path):
    clock = FakeClock()
    store = open_store(tmp_path / "log.db", TEN_S, clock)
    store.start()
    store.submit(reading(float("nan"), {"p_sys": 1.0}))
    store.submit(reading(T0 + 1, {"p_sys": 2.0}, load=""))
    store.submit(reading(T0 + 1, {"p_sys": 3.0}))
    store.flush()
    stats = store.stats()
    assert stats.last_error is not None and "skipped" in stats.last_error
    assert stats.last_error_s == clock.now
    assert list(store.history("main", ["p_sys"], T0, T0 + 10, 1).series["p_sys"].avg) == [3.0]
    store.close()


def test_variables_a_wiring_lacks_are_absent_and_unknown_names_refused(tmp_path):
    store = open_store(tmp_path / "log.db", TEN_S)
    store.submit(reading(T0 + 1, {"v_l1": 230.0, "p_sys": 5.0}, {"kwh_imp": 1.0}))
    store.submit(
        reading(
            T0 + 1,
            {"v_l1": 231.0, "v_l2": 232.0, "p_sys": 7.0},
            {"kwh_imp": 2.0},
            load="ext",
            wiring=Wiring.THREE_PHASE_4W,
        )
    )
    store.flush()
    h = store.history("main", ["v_l1", "v_l2", "kwh_exp"], T0, T0 + 10, 1)
    assert set(h.series) == {"v_l1"}
    assert set(store.history("ext", ["v_l2"], T0, T0 + 10, 1).series) == {"v_l2"}
    with pytest.raises(ValueError, match="unknown variable 'v_l4'"):
        store.history("main", ["v_l1", "v_l4"], T0, T0 + 10, 1)
    assert store.loads() == ["main", "ext"]
    store.close()


def test_a_changed_wiring_gets_a_new_layout_and_old_rows_stay_readable(tmp_path):
    store = open_store(tmp_path / "log.db", TEN_S)
    store.submit(reading(T0 + 5, {"v_l1": 230.0}, {"kwh_imp": 1.0}))
    store.submit(reading(T0 + 15, {"v_l1": 231.0, "v_l2": 229.0}, {"kwh_imp": 2.0}))
    store.flush()
    h = store.history("main", ["v_l1", "v_l2"], T0, T0 + 20, 2)
    assert list(h.series["v_l1"].avg) == [230.0, 231.0]
    assert list(h.series["v_l2"].t) == [T0 + 10]
    store.close()


def test_values_read_across_interleaved_layouts_come_back_in_time_order(tmp_path):
    store = open_store(tmp_path / "log.db", TEN_S)
    # The wiring changes back and forth: rows of two layouts alternate in time.
    for k in range(6):
        inst = {"v_l1": 230.0 + k, **({"v_l2": 100.0 + k} if k % 2 else {})}
        store.submit(reading(T0 + 10 * k + 5, inst, {"kwh_imp": 1.0 + k}))
    store.flush()
    h = store.history("main", ["v_l1", "kwh_imp", "v_l2"], T0, T0 + 60, 6)
    assert list(h.series["v_l1"].avg) == [230.0 + k for k in range(6)]
    assert list(h.series["v_l1"].t) == [T0 + 10 * k for k in range(6)]
    assert list(h.series["kwh_imp"].avg) == [1.0 + k for k in range(6)]
    assert list(h.series["v_l2"].avg) == [101.0, 103.0, 105.0]
    assert list(h.series["v_l2"].t) == [T0 + 10, T0 + 30, T0 + 50]
    store.close()


def test_close_then_more_readings_of_the_same_bucket_merge_into_one_row(tmp_path):
    path = tmp_path / "log.db"
    clock = FakeClock(T0)
    cfg = config((10, None), (60, None))
    store = open_store(path, cfg, clock)
    store.start()
    # The last 10 s bucket of a minute: closing writes it, which closes the minute too.
    base = T0 + 50
    store.submit(reading(base + 1, {"p_sys": 100.0}, {"kwh_imp": 1.0}, duration=1.0))
    store.submit(reading(base + 3, {"p_sys": 200.0}, {"kwh_imp": 1.1}, duration=2.0))
    store.close()
    assert len(rows(path, 10)) == 1 and len(rows(path, 60)) == 1
    store = open_store(path, cfg, clock)
    store.start()
    store.submit(reading(base + 6, {"p_sys": 400.0}, {"kwh_imp": 1.3}, duration=3.0))
    store.submit(reading(base + 8, {"p_sys": 0.0}, {"kwh_imp": 1.4}, duration=2.0))
    store.close()
    store = open_store(path, cfg, clock)
    assert [r[1:3] for r in rows(path, 10)] == [(base, 8_000_000)]
    expected = weighted(np.array([100.0, 200.0, 400.0, 0.0]), np.array([1.0, 2.0, 3.0, 2.0]))
    for start, end in ((base, base + 10), (T0, T0 + 60)):  # first tier, then the minute
        h = store.history("main", ["p_sys", "kwh_imp"], start, end, 1)
        assert close_to(float(h.series["p_sys"].avg[0]), expected)
        assert float(h.series["p_sys"].max[0]) == 400.0
        assert float(h.series["kwh_imp"].avg[0]) == 1.4
    assert h.tier_resolution_s == 60
    assert [r[1:3] for r in rows(path, 60)] == [(T0, 8_000_000)]
    assert [t.rows for t in store.stats().tiers] == [1, 1]
    store.close()


def test_flush_and_close_are_idempotent_and_a_closed_store_says_so(tmp_path):
    store = open_store(tmp_path / "log.db", TEN_S)
    store.start()
    store.start()
    store.submit(reading(T0 + 1, {"p_sys": 1.0}))
    store.flush()
    store.flush()
    store.close()
    store.close()
    store.submit(reading(T0 + 2, {"p_sys": 1.0}))
    assert store.stats is not None
    with pytest.raises(StoreError, match="closed"):
        store.flush()
    with pytest.raises(StoreError, match="closed"):
        store.start()
    with pytest.raises(StoreError, match="closed"):
        store.history("main", ["p_sys"], T0, T0 + 10, 1)


def test_close_without_start_still_writes_what_was_submitted(tmp_path):
    store = open_store(tmp_path / "log.db", TEN_S)
    store.submit(reading(T0 + 1, {"p_sys": 1.0}))
    store.close()
    assert len(rows(tmp_path / "log.db", 10)) == 1
