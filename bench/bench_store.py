"""The data logger's cost and speed (prints numbers, never asserts).

Usage: .venv/bin/python bench/bench_store.py [--loads N] [--days D] [--seconds S] [--dir PATH]

1. Ingest: 11 loads × every variable (3P4W: all instantaneous values and counters) at one
   reading per second through ``LogStore.submit``, on a fake clock, as fast as possible, with a
   writer pass (one commit) per simulated second. CPU time counts every thread of the process.
2. History: ``--days`` (default a year) of synthetic 1-minute rows for ``--loads`` loads,
   bulk-inserted into the 1-minute tier, then rolled up by the store's own catch-up; the data
   directory size per load, and the time of a history query of one variable over the whole
   range at 1000 points and of the energy per month.
"""

from __future__ import annotations

import argparse
import gc
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from emsbox import variables
from emsbox.bus import Reading
from emsbox.samples import Wiring
from emsbox.store import schema, tables
from emsbox.store.catalog import Catalog
from emsbox.store.config import StoreConfig
from emsbox.store.log import LogStore
from emsbox.store.row_format import Layout

INSTANT = [v.name for v in variables.INSTANTANEOUS]
COUNTERS = list(variables.COUNTER_NAMES)
START_S = 1_735_689_600  # 2025-01-01 00:00 UTC
ROME = ZoneInfo("Europe/Rome")


class Clock:
    """A settable clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def file_bytes(path: Path) -> int:
    """Size of the database and its write-ahead log."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def written_bytes() -> int | None:
    """Bytes this process has written through system calls so far (Linux), else None."""
    try:
        text = Path("/proc/self/io").read_text()
    except OSError:
        return None
    return next(
        (int(v) for k, v in (line.split(":") for line in text.splitlines()) if k == "wchar"), None
    )


def ingest(directory: Path, loads: int, seconds: int, commit_every: int) -> None:
    """Every variable of ``loads`` loads at 1 reading/s through submit, a commit every
    ``commit_every`` seconds of data (the store's commit_interval_s)."""
    rng = np.random.default_rng(1)
    path = directory / "ingest.sqlite3"
    clock = Clock(START_S)
    store = LogStore(path, StoreConfig(), clock=clock)
    store.start()
    names = [f"load{i}" for i in range(loads)]
    base = {n: 100.0 + 100.0 * rng.random(len(INSTANT)) for n in names}
    counters = {n: 1e5 * rng.random(len(COUNTERS)) for n in names}
    cpu = time.process_time()
    wall = time.perf_counter()
    written = written_bytes()
    for s in range(seconds):
        t = START_S + s + 1
        for n in names:
            v = base[n] * (1.0 + 0.01 * rng.standard_normal(len(INSTANT)))
            counters[n] += 0.001 * rng.random(len(COUNTERS))
            store.submit(
                Reading(
                    load=n,
                    wiring=Wiring.THREE_PHASE_4W,
                    timestamp_s=float(t),
                    duration_s=1.0,
                    windows=5,
                    values=dict(zip(INSTANT, v.tolist(), strict=True)),
                    minimum=dict(zip(INSTANT, (v * 0.99).tolist(), strict=True)),
                    maximum=dict(zip(INSTANT, (v * 1.01).tolist(), strict=True)),
                    counters=dict(zip(COUNTERS, counters[n].tolist(), strict=True)),
                )
            )
        clock.now = t
        if (s + 1) % commit_every == 0:
            store.flush()
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    after = written_bytes()
    stats = store.stats()
    store.close()
    first = stats.tiers[0]
    size = file_bytes(path)
    per_row = size / max(1, sum(t.rows for t in stats.tiers))
    print(
        f"ingest: {loads} loads × {len(INSTANT)} values + {len(COUNTERS)} counters, "
        f"{seconds} s of data at 1 reading/s, a commit every {commit_every} s"
    )
    print(f"  CPU {cpu:.2f} s, wall {wall:.2f} s for {seconds} s of data")
    print(f"  CPU share, real time: {100.0 * cpu / seconds:.2f} % of one core")
    print(f"  first-tier rows {first.rows}, file {size / 1e6:.1f} MB ≈ {per_row:.0f} B per row")
    if written is not None and after is not None:
        rate = (after - written) / seconds
        print(f"  written: {rate / 1e3:.0f} kB per second of data, {rate * 86400 / 1e9:.1f} GB/day")
    print(
        f"  1 s tier for 48 h: {per_row * 48 * 3600 / 1e6:.0f} MB per load, "
        f"{per_row * 48 * 3600 * 11 / 1e9:.2f} GB for 11 loads"
    )


def bulk_minutes(path: Path, loads: int, days: int) -> None:
    """Synthetic 1-minute rows of ``days`` days for ``loads`` loads, straight into the tier."""
    conn = schema.open_log(path)
    schema.ensure_tier_tables(conn, [t.resolution_s for t in StoreConfig().tiers])
    catalog = Catalog()
    layout = Layout.of([*INSTANT, "tariff", "partial_running", *COUNTERS])
    rng = np.random.default_rng(2)
    minutes_per_day = 1440
    kwh = np.zeros((loads, len(layout.counters)))
    conn.execute("BEGIN IMMEDIATE")
    ids = [catalog.create_load(conn, f"load{i}") for i in range(loads)]
    layout_ids = [catalog.layout_id(conn, i, layout) for i in ids]
    conn.execute("COMMIT")
    ni = len(layout.instantaneous)
    for day in range(days):
        conn.execute("BEGIN IMMEDIATE")
        t = START_S + day * 86400 + 60 * np.arange(minutes_per_day)
        # A daily load curve with noise, in watts; counters integrate it.
        curve = 2000.0 + 1500.0 * np.sin(2 * math.pi * (t % 86400) / 86400.0)
        for i, load_id in enumerate(ids):
            rec = np.zeros(minutes_per_day, dtype=layout.dtype)
            avg = curve[:, None] * (1.0 + 0.05 * rng.random((minutes_per_day, ni)))
            rec["avg"] = avg
            rec["min"] = avg * 0.9
            rec["max"] = avg * 1.1
            step = (curve * 60.0 / 3.6e6)[:, None] * np.ones(len(layout.counters))
            rec["c"] = kwh[i] + np.cumsum(step, axis=0)
            kwh[i] = rec["c"][-1]
            data = rec.tobytes()
            size = layout.dtype.itemsize
            conn.executemany(
                "INSERT INTO log_60s (load_bucket, layout_id, covered_us, data)"
                " VALUES (?, ?, 60000000, ?)",
                [
                    (
                        schema.pack_key(load_id, int(b)),
                        layout_ids[i],
                        data[j * size : (j + 1) * size],
                    )
                    for j, b in enumerate(t)
                ],
            )
        tables.add_row_counts(conn, {(60, load_id): minutes_per_day for load_id in ids})
        conn.execute("COMMIT")
    conn.close()


def timed(fn: Callable[[], object], runs: int = 20) -> tuple[float, float]:
    """Median and 95th percentile of ``runs`` calls, in milliseconds (after one warm-up)."""
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]


def history(directory: Path, loads: int, days: int) -> None:
    """A year (``days``) of 1-minute history: size per load, query times."""
    path = directory / "year.sqlite3"
    t = time.perf_counter()
    bulk_minutes(path, loads, days)
    inserted = time.perf_counter() - t
    end = START_S + days * 86400
    store = LogStore(path, StoreConfig(), clock=Clock(end + 3600))
    t = time.perf_counter()
    cpu = time.process_time()
    store.start()
    store.flush(timeout_s=3600.0)
    rolled = time.perf_counter() - t
    cpu = time.process_time() - cpu
    stats = store.stats()
    gc.freeze()  # as `emsbox run` does once started: full collections skip start-up objects
    size = file_bytes(path)
    per_load_year = size / loads * 365.0 / days
    print(f"history: {loads} load(s), {days} days of 1-minute rows (all {len(INSTANT)} values)")
    print(f"  bulk insert {inserted:.1f} s; roll-up catch-up {rolled:.1f} s ({cpu:.1f} s CPU)")
    for tier in stats.tiers:
        print(f"  tier {tier.resolution_s:>5} s: {tier.rows:>8} rows")
    print(
        f"  file {size / 1e6:.0f} MB: {per_load_year / 1e6:.0f} MB per load per year "
        f"(minute, 15-minute and hour tiers); 11 loads: {11 * per_load_year / 1e9:.2f} GB/year"
    )
    start = float(START_S)
    median, p95 = timed(lambda: store.history("load0", ["p_sys"], start, float(end), 1000))
    h = store.history("load0", ["p_sys"], start, float(end), 1000)
    print(
        f"  history of p_sys over {days} days at 1000 points (tier {h.tier_resolution_s} s): "
        f"median {median:.1f} ms, p95 {p95:.1f} ms"
    )
    day_end = float(START_S + 86400 * min(days, 200))
    median, p95 = timed(lambda: store.history("load0", ["p_sys"], day_end - 86400, day_end, 1000))
    print(
        f"  history of p_sys over one day at 1000 points: median {median:.1f} ms, p95 {p95:.1f} ms"
    )
    median, p95 = timed(lambda: store.energy("load0", "month", start, float(end), ROME))
    months = store.energy("load0", "month", start, float(end), ROME)
    print(
        f"  energy per month over {days} days ({len(months)} periods, Europe/Rome): "
        f"median {median:.1f} ms, p95 {p95:.1f} ms"
    )
    median, p95 = timed(lambda: store.energy("load0", "day", end - 31 * 86400.0, float(end), ROME))
    print(f"  energy per day over 31 days: median {median:.1f} ms, p95 {p95:.1f} ms")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=1, help="loads of the year of history")
    parser.add_argument("--days", type=int, default=365, help="days of 1-minute history")
    parser.add_argument("--ingest-loads", type=int, default=11, help="loads of the ingest run")
    parser.add_argument("--seconds", type=int, default=120, help="seconds of ingested data")
    parser.add_argument("--commit-every", type=int, default=1, help="seconds of data per commit")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-store-", dir=args.dir))
    try:
        ingest(directory, args.ingest_loads, args.seconds, args.commit_every)
        history(directory, args.loads, args.days)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
