"""Retention: exactly the expired rows go, in small batches; queries use coarser tiers instead."""

from __future__ import annotations

import sqlite3
import time

import pytest
from log_readings import T0, FakeClock, config, open_store, reading, rows

from emsbox.store import writer
from emsbox.store.retention import expiry_limit

CFG = config((10, 1.0), (60, 2.0), (3600, None))
HOURS = 3


def fill(store) -> None:
    """Three hours of 10 s readings, power = minutes since T0."""
    for i in range(HOURS * 360):
        store.submit(reading(T0 + 10 * (i + 1), {"p_sys": float(i // 6)}, duration=10.0))


def count(path, resolution):
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT count(*) FROM log_{resolution}s").fetchone()[0]


def test_expiry_limit_is_the_first_bucket_that_has_not_ended_before_the_cutoff():
    now = T0 + 10_000.5
    assert expiry_limit(now, 10, None) is None
    limit = expiry_limit(now, 10, 1.0)
    cutoff = now - 3600
    assert limit is not None
    assert limit - 1 + 10 <= cutoff < limit + 10


def test_retention_deletes_exactly_the_expired_rows_of_each_tier(tmp_path):
    path = tmp_path / "log.db"
    clock = FakeClock(T0 + HOURS * 3600 + 300)
    store = open_store(path, CFG, clock)
    fill(store)
    store.flush()
    # 10 s tier: kept while bucket + 10 > now − 1 h, i.e. from T0 + 7500.
    assert [r[1] for r in rows(path, 10)] == list(range(T0 + 7500, T0 + 10800, 10))
    # 60 s tier: expired while bucket + 60 <= now − 2 h, i.e. before T0 + 3900, but only whole
    # hours of the next tier go: kept from T0 + 3600.
    assert [r[1] for r in rows(path, 60)] == list(range(T0 + 3600, T0 + 10800, 60))
    assert [r[1] for r in rows(path, 3600)] == [T0, T0 + 3600, T0 + 7200]
    stats = store.stats()
    assert [t.rows for t in stats.tiers] == [count(path, r) for r in (10, 60, 3600)]
    assert [t.oldest_s for t in stats.tiers] == [T0 + 7500, T0 + 3600, T0]
    assert [t.newest_s for t in stats.tiers] == [T0 + 10790, T0 + 10740, T0 + 7200]
    store.close()


def test_a_range_older_than_a_tier_keeps_is_read_from_the_coarser_tiers(tmp_path):
    path = tmp_path / "log.db"
    store = open_store(path, CFG, FakeClock(T0 + HOURS * 3600 + 300))
    fill(store)
    store.flush()
    h = store.history("main", ["p_sys"], T0, T0 + HOURS * 3600, HOURS * 360)
    assert h.tier_resolution_s == 10
    s = h.series["p_sys"]
    # The hour row before the minute tier's first row, minutes up to the 10 s tier.
    expected_t = [T0, *range(T0 + 3600, T0 + 7500, 60), *range(T0 + 7500, T0 + 10800, 10)]
    assert list(s.t) == expected_t
    assert s.avg[0] == 29.5  # mean minute of the hour
    assert (s.min[0], s.max[0]) == (0.0, 59.0)
    assert list(s.avg[1:3]) == [60.0, 61.0]
    assert s.avg[-1] == 179.0
    store.close()


def test_retention_works_in_small_batches_until_done(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "BATCH_ROWS", 100)
    path = tmp_path / "log.db"
    store = open_store(path, CFG, FakeClock(T0 + HOURS * 3600 + 300))
    fill(store)
    store.flush()  # no writer thread: one pass, one batch per tier
    # The batch of 100 rows (1000 s) ends on the last whole minute: 96 rows.
    assert count(path, 10) == HOURS * 360 - 96
    assert count(path, 60) == HOURS * 60 - 60  # the first whole hour
    store.start()  # the writer keeps going while there is a backlog
    deadline = time.monotonic() + 10.0
    while count(path, 10) > 330 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count(path, 10) == 330
    store.close()
    assert store.stats is not None


def test_rows_are_not_deleted_before_the_next_tier_has_rolled_them_up(tmp_path):
    path = tmp_path / "log.db"
    # Rows expire 3.6 s after their bucket ends, but the minute is still open: the reading
    # of its last 10 s is in memory and the clock has not passed the minute's end.
    clock = FakeClock(T0 + 65)
    store = open_store(path, config((10, 0.001), (60, None), commit_interval_s=0.1), clock)
    for i in range(6):
        store.submit(reading(T0 + 10 * (i + 1), {"p_sys": 1.0}, duration=10.0))
    store.start()
    deadline = time.monotonic() + 10.0
    while store.stats().last_commit_s is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r[1] for r in rows(path, 10)] == list(range(T0, T0 + 50, 10))
    assert rows(path, 60) == []
    store.flush()  # closes the minute, rolls it up; now its rows may go
    assert [r[1] for r in rows(path, 60)] == [T0]
    assert rows(path, 10) == []
    store.close()


@pytest.mark.parametrize("hours", [0.5, 30.0])
def test_a_tier_kept_forever_is_never_trimmed(tmp_path, hours):
    path = tmp_path / "log.db"
    store = open_store(path, config((10, hours), (3600, None)), FakeClock(T0 + 400 * 86400))
    fill(store)
    store.flush()
    assert len(rows(path, 3600)) == HOURS
    assert rows(path, 10) == []
    store.close()


def test_a_coarse_bucket_larger_than_a_batch_goes_in_one_piece(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "BATCH_ROWS", 100)
    path = tmp_path / "log.db"
    # 10 s rows, rolled up by the hour: an hour holds 360 rows, more than a batch.
    store = open_store(path, config((10, 1.0), (3600, None)), FakeClock(T0 + HOURS * 3600 + 300))
    fill(store)
    store.flush()
    # One pass: the first expired hour goes whole, the second waits for the next batch.
    assert rows(path, 10)[0][1] == T0 + 3600
    store.close()


def test_history_of_a_store_begun_mid_minute_keeps_its_first_seconds(tmp_path):
    path = tmp_path / "log.db"
    store = open_store(path, config((10, 1.0), (60, None)), FakeClock(T0 + 200))
    # Logging began 30 s into a minute; that minute is rolled up from the same rows.
    for i in range(3, 18):
        store.submit(reading(T0 + 10 * (i + 1), {"p_sys": float(i)}, duration=10.0))
    store.flush()
    assert [r[1] for r in rows(path, 60)] == [T0, T0 + 60, T0 + 120]
    h = store.history("main", ["p_sys"], T0, T0 + 180, 100)
    assert h.tier_resolution_s == 10
    # Every 10 s row, the first minute's included.
    assert list(h.series["p_sys"].avg) == [float(i) for i in range(3, 18)]
    store.close()
