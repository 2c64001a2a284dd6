"""Properties: roll-ups equal direct aggregation; a restart anywhere changes nothing."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from log_readings import T0, FakeClock, config, open_store, reading

from emsbox.store.rollup import aggregate
from emsbox.store.row_format import Layout, RowBlock

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CFG = config((1, None), (4, None), (12, None))

# One reading: (second, quarter of the second it ends in, share of a quarter it covers,
# power, counter step). Several readings per second, so that a restart may split a bucket;
# together they never cover more than the second.
readings_strategy = st.lists(
    st.tuples(
        st.integers(0, 47),
        st.integers(0, 3),
        st.floats(0.05, 1.0),
        st.floats(-1e4, 1e4, allow_nan=False),
        st.floats(0.0, 5.0),
    ),
    min_size=1,
    max_size=80,
    unique_by=lambda r: (r[0], r[1]),
).map(sorted)


def as_readings(raw):
    kwh = 1000.0 + np.cumsum([r[4] for r in raw])
    for (second, quarter, share, p, _), counter in zip(raw, kwh, strict=True):
        yield reading(
            T0 + second + (quarter + 1) / 4,
            {"p_sys": p},
            {"kwh_imp": counter},
            duration=round(share / 4, 6),  # whole µs: the stored covered time is exact
            minimum={"p_sys": p - 1.0},
            maximum={"p_sys": p + 1.0},
        )


def tier_rows(path: Path, resolution: int) -> dict[int, tuple[int, bytes]]:
    with sqlite3.connect(path) as conn:
        found = conn.execute(
            f"SELECT load_bucket, covered_us, data FROM log_{resolution}s ORDER BY load_bucket"
        ).fetchall()
    return {k: (c, bytes(d)) for k, c, d in found}


def decoded(path: Path, resolution: int) -> dict[int, tuple[float, ...]]:
    """Bucket → (covered µs, kWh, avg, min, max) of a tier of a one-layout log."""
    layout = Layout(("p_sys", "tariff", "partial_running"), ("kwh_imp",))
    out = {}
    for key, (covered, data) in tier_rows(path, resolution).items():
        rec = np.frombuffer(data, dtype=layout.dtype)[0]
        out[key] = (covered, rec["c"][0], rec["avg"][0], rec["min"][0], rec["max"][0])
    return out


@SETTINGS
@given(raw=readings_strategy)
def test_the_coarsest_tier_equals_the_direct_aggregate_of_the_readings(raw):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "log.db"
        store = open_store(path, CFG, FakeClock(T0))
        for r in as_readings(raw):
            store.submit(r)
        store.close()
        store = open_store(path, CFG, FakeClock(T0 + 3600))  # closes the last buckets
        store.flush()
        h = store.history("main", ["p_sys", "kwh_imp"], T0, T0 + 48, 4)
        store.close()
    assert h.tier_resolution_s == 12
    seconds = np.array([r[0] for r in raw])
    share = np.array([round(r[2] / 4, 6) for r in raw])
    p = np.array([r[3] for r in raw])
    kwh = 1000.0 + np.cumsum([r[4] for r in raw])
    buckets = sorted({s // 12 for s in seconds})
    s = h.series["p_sys"]
    assert list(s.t) == [T0 + 12 * b for b in buckets]
    for i, b in enumerate(buckets):
        sel = seconds // 12 == b
        expected = np.sum(p[sel] * share[sel]) / np.sum(share[sel])
        # float32 at every tier: relative to the size of the values averaged
        assert s.avg[i] == pytest.approx(expected, abs=3e-7 * 3 * np.abs(p[sel]).max() + 1e-9)
        assert s.min[i] == np.float32(p[sel] - 1.0).min()
        assert s.max[i] == np.float32(p[sel] + 1.0).max()
        assert h.series["kwh_imp"].avg[i] == kwh[sel][-1]


@SETTINGS
@given(raw=readings_strategy, split=st.floats(0.0, 1.0))
def test_a_restart_anywhere_gives_the_same_log_without_duplicates(raw, split):
    cut = int(split * len(raw))
    readings = list(as_readings(raw))
    with tempfile.TemporaryDirectory() as d:
        once, twice = Path(d) / "once.db", Path(d) / "twice.db"
        store = open_store(once, CFG, FakeClock(T0))
        for r in readings:
            store.submit(r)
        store.close()
        for part in (readings[:cut], readings[cut:]):
            store = open_store(twice, CFG, FakeClock(T0))
            for r in part:
                store.submit(r)
            store.close()
        for resolution in (1, 4, 12):
            a, b = decoded(once, resolution), decoded(twice, resolution)
            assert sorted(a) == sorted(b)
            for key in a:
                covered_a, kwh_a, *stats_a = a[key]
                covered_b, kwh_b, *stats_b = b[key]
                assert abs(covered_a - covered_b) <= 2 and kwh_a == kwh_b
                assert stats_a[1:] == stats_b[1:]
                scale = 3e-7 * max(1.0, abs(float(stats_a[1])), abs(float(stats_a[2])))
                assert stats_a[0] == pytest.approx(stats_b[0], abs=scale)


@SETTINGS
@given(
    values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30),
    covered=st.lists(st.floats(0.001, 10.0), min_size=30, max_size=30),
    split=st.integers(1, 29),
)
def test_aggregating_in_two_steps_equals_one_step(values, covered, split):
    n = len(values)
    layout = Layout(("p_sys",), ("kwh_imp",))
    v = np.array(values)[:, None]
    block = RowBlock(
        layout,
        np.arange(n, dtype=np.int64),
        np.array(covered[:n]),
        np.cumsum(np.abs(v), axis=0),
        v,
        v - 1,
        v + 1,
        [layout],
        np.zeros(n, dtype=np.int64),
    )
    whole = aggregate(block, np.zeros(n, dtype=np.int64))
    halves = aggregate(block, (np.arange(n) >= split).astype(np.int64))
    again = aggregate(halves, np.zeros(len(halves), dtype=np.int64))
    assert again.avg[0, 0] == pytest.approx(whole.avg[0, 0], rel=1e-9, abs=1e-6)
    assert again.minimum[0, 0] == whole.minimum[0, 0] == np.min(v) - 1
    assert again.maximum[0, 0] == whole.maximum[0, 0] == np.max(v) + 1
    assert again.counters[0, 0] == whole.counters[0, 0] == block.counters[-1, 0]
    assert again.covered_s[0] == pytest.approx(whole.covered_s[0])
