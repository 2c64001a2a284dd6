"""Roll-ups from tier to tier against aggregates computed directly from the raw readings."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from log_readings import T0, FakeClock, config, open_store, reading, rows

from emsbox.store.config import StoreConfig

RES = (1, 60, 900, 3600)


class Raw:
    """Random 1 s readings from T0: one per second, durations 0.5…1 s."""

    def __init__(self, seconds: int, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.second = np.arange(seconds)
        self.duration = rng.uniform(0.5, 1.0, seconds)
        self.p = 1000.0 + rng.normal(0.0, 300.0, seconds)
        self.p_min = self.p - rng.uniform(0.0, 50.0, seconds)
        self.p_max = self.p + rng.uniform(0.0, 50.0, seconds)
        self.kwh = 123456.0 + np.cumsum(rng.uniform(0.0, 0.01, seconds))

    def readings(self, start: int = 0, stop: int | None = None):
        for i in self.second[start:stop]:
            yield reading(
                T0 + i + 1,
                {"p_sys": self.p[i]},
                {"kwh_imp": self.kwh[i]},
                duration=self.duration[i],
                minimum={"p_sys": self.p_min[i]},
                maximum={"p_sys": self.p_max[i]},
            )

    def expected(self, resolution: int, stop: int | None = None) -> dict[int, tuple]:
        """Bucket start → (avg, min, max, last kWh, covered s) computed from the readings."""
        out = {}
        sec = self.second[:stop]
        for b in np.unique(sec // resolution * resolution):
            i = sec[(sec >= b) & (sec < b + resolution)]
            d = self.duration[i]
            out[T0 + int(b)] = (
                float(np.sum(self.p[i] * d) / np.sum(d)),
                float(np.float32(self.p_min[i]).min()),
                float(np.float32(self.p_max[i]).max()),
                float(self.kwh[i[-1]]),
                float(np.sum(d)),
            )
        return out


def check_tier(store, path, raw: Raw, resolution: int, stop: int | None = None) -> None:
    """Every bucket of the tier equals the direct aggregate of its readings."""
    expected = raw.expected(resolution, stop)
    stored = {r[1]: r[2] for r in rows(path, resolution)}
    assert sorted(stored) == sorted(expected)
    buckets = sorted(expected)
    end = buckets[-1] + resolution
    h = store.history("main", ["p_sys", "kwh_imp"], T0, end, (end - T0) // resolution)
    assert h.tier_resolution_s == resolution
    p, kwh = h.series["p_sys"], h.series["kwh_imp"]
    assert list(p.t) == buckets and list(kwh.t) == buckets
    avg, low, high, last, covered = (
        np.array(x) for x in zip(*(expected[b] for b in buckets), strict=True)
    )
    assert np.array([stored[b] for b in buckets]) == pytest.approx(covered * 1e6, abs=resolution)
    assert p.avg == pytest.approx(avg, rel=1e-6)
    assert list(p.min) == list(low) and list(p.max) == list(high)
    assert list(kwh.avg) == list(last)


def test_every_tier_equals_the_direct_aggregate_of_the_readings(tmp_path):
    raw = Raw(2 * 3600 + 600)
    path = tmp_path / "log.db"
    store = open_store(path, StoreConfig(), FakeClock(T0))
    store.start()
    for r in raw.readings():
        store.submit(r)
    store.close()
    store = open_store(path, StoreConfig(), FakeClock(T0))
    for resolution in RES:
        # The last 10 minutes close neither a quarter hour nor an hour.
        check_tier(store, path, raw, resolution, 7200 if resolution >= 900 else None)
    assert [t.rows for t in store.stats().tiers] == [7800, 130, 8, 2]
    store.close()


def test_tiers_added_later_are_rolled_up_from_the_rows_already_logged(tmp_path):
    raw = Raw(2 * 3600, seed=2)
    path = tmp_path / "log.db"
    store = open_store(path, config((1, None)), FakeClock(T0))
    for r in raw.readings():
        store.submit(r)
    store.close()
    with sqlite3.connect(path) as conn:
        assert (
            conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'log_60s'").fetchone()[0]
            == 0
        )
    store = open_store(path, StoreConfig(), FakeClock(T0 + 3 * 3600))
    store.start()
    store.flush()
    for resolution in RES:
        check_tier(store, path, raw, resolution)
    store.close()


def test_a_restart_rolls_up_the_buckets_that_closed_while_stopped(tmp_path):
    raw = Raw(5400, seed=3)
    path = tmp_path / "log.db"
    store = open_store(path, StoreConfig(), FakeClock(T0))
    for r in raw.readings():
        store.submit(r)
    store.close()
    # Stopped half way through the second hour: that hour is not rolled up yet.
    assert [r[1] for r in rows(path, 3600)] == [T0]
    store = open_store(path, StoreConfig(), FakeClock(T0 + 2 * 3600 + 30))
    store.start()
    store.flush()
    check_tier(store, path, raw, 3600)
    store.close()


def test_readings_arriving_late_roll_the_coarser_buckets_up_again(tmp_path):
    raw = Raw(180, seed=4)
    path = tmp_path / "log.db"
    clock = FakeClock(T0 + 1000)  # the clock runs well ahead of the data
    store = open_store(path, StoreConfig(), clock)
    store.start()
    order = list(raw.readings())
    for r in order[:100] + order[120:]:
        store.submit(r)
    store.flush()
    for r in order[100:120]:  # seconds 100…119, after their minute was rolled up
        store.submit(r)
    store.close()
    store = open_store(path, StoreConfig(), clock)
    check_tier(store, path, raw, 60)
    check_tier(store, path, raw, 900)
    store.close()


def test_a_long_catch_up_goes_in_steps_that_close_does_not_wait_for(tmp_path, monkeypatch):
    from emsbox.store import writer

    monkeypatch.setattr(writer, "ROLLUP_CHUNK_ROWS", 120)  # two minutes per step
    raw = Raw(3600, seed=5)
    path = tmp_path / "log.db"
    store = open_store(path, config((1, None)), FakeClock(T0))
    for r in raw.readings():
        store.submit(r)
    store.close()
    store = open_store(path, StoreConfig(), FakeClock(T0 + 7200))
    store.close()  # never started: one pass, one step per tier
    assert len(rows(path, 60)) == 2
    store = open_store(path, StoreConfig(), FakeClock(T0 + 7200))
    store.start()
    store.flush()  # waits for every step
    for resolution in RES:
        check_tier(store, path, raw, resolution)
    store.close()
