"""`kill -9` of the running service at random moments, many times (prints, never asserts).

Usage: .venv/bin/python bench/bench_durability.py [--runs 100] [--extension-loads 2]

Each run starts `emsbox run` on the same data directory, waits a random time while it logs,
kills it with SIGKILL and then checks, with the service down:
* the log database passes `PRAGMA integrity_check`;
* every first-tier bucket committed before is still there, unchanged (nothing lost), and no
  bucket covers more measured time than its length (nothing counted twice);
* no saved counter is below its value after the previous run (never backwards);
* how much power-on time (`hours_on`, which counts measured time) the saved counters lack
  against the last published reading plus the time that passed until the kill: the energy
  lost to the kill is at most that long.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sqlite3
import time
from pathlib import Path

import httpx

from emsbox.metering.energy import CounterState
from emsbox.store.schema import tier_table
from service_process import ServiceProcess


def first_tier(path: Path) -> dict[int, tuple[int, str]]:
    """Every first-tier row: key → (covered µs, digest of the values)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(f"SELECT load_bucket, covered_us, data FROM {tier_table(1)}").fetchall()
        return {k: (c, hashlib.sha1(d).hexdigest()) for k, c, d in rows}
    finally:
        db.close()


def integrity(path: Path) -> str:
    """The result of SQLite's integrity check."""
    db = sqlite3.connect(path)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def saved_counters(path: Path) -> dict[str, dict[str, float]]:
    """The saved counters of every load, in their units."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT load, state FROM counters").fetchall()
        return {load: CounterState.from_json(text).counters() for load, text in rows}
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--extension-loads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--max-wait", type=float, default=12.0, help="longest run before the kill, seconds"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    data_dir: Path | None = None
    committed: dict[int, tuple[int, str]] = {}
    previous: dict[str, dict[str, float]] = {}
    lost = duplicated = backwards = corrupt = 0
    worst_gap_s = 0.0
    started = time.monotonic()
    for run in range(args.runs):
        service = ServiceProcess(args.extension_loads, data_dir)
        data_dir = service.data_dir
        headers = {"Authorization": f"Bearer {service.token}"}
        last: dict | None = None
        with httpx.Client(base_url=service.url, verify=service.ssl, headers=headers) as client:
            kill_at = time.monotonic() + rng.uniform(0.5, args.max_wait)
            while time.monotonic() < kill_at:
                r = client.get("/api/v1/loads/main/now")
                if r.status_code == 200:
                    last = r.json()
                time.sleep(0.05)
        service.kill_group()  # the service and its acquisition process: a power cut
        killed_wall = time.time()
        log_path = data_dir / "log.sqlite3"
        if integrity(log_path) != "ok":
            corrupt += 1
        rows = first_tier(log_path)
        lost += sum(1 for k, v in committed.items() if rows.get(k) != v)
        duplicated += sum(1 for covered, _ in rows.values() if covered > 1_000_000 * 1.01)
        committed = rows
        saved = saved_counters(data_dir / "counters.sqlite3")
        for load, values in saved.items():
            for name, value in values.items():
                if "partial" not in name and value < previous.get(load, {}).get(name, 0.0) - 1e-9:
                    backwards += 1
        previous = saved
        if last is not None:
            expected_h = last["values"]["hours_on"] + (killed_wall - last["timestamp_s"]) / 3600
            gap_s = (expected_h - saved["main"]["hours_on"]) * 3600
            worst_gap_s = max(worst_gap_s, gap_s)
        print(
            f"run {run + 1:3d}: {len(rows)} first-tier rows; lost {lost}, double {duplicated}, "
            f"backwards {backwards}, corrupt {corrupt}; worst measured time missing "
            f"{worst_gap_s:.2f} s",
            flush=True,
        )
    print(
        f"{args.runs} kill -9 runs in {time.monotonic() - started:.0f} s: integrity failures "
        f"{corrupt}, committed buckets lost {lost}, buckets counted twice {duplicated}, "
        f"counters gone backwards {backwards}, most measured time missing after a kill "
        f"{worst_gap_s:.2f} s (includes the up to 0.2 s block still being measured)"
    )


if __name__ == "__main__":
    main()
