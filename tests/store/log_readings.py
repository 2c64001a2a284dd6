"""Readings, a fake clock and stores for the log store tests."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from emsbox.bus import Reading
from emsbox.samples import Wiring
from emsbox.store.config import StoreConfig, Tier
from emsbox.store.log import LogStore

# 2023-11-15 00:00:00 UTC: a whole day, hence a whole hour, 15 minutes and minute.
T0 = 1_700_006_400


class FakeClock:
    """A wall clock the test sets."""

    def __init__(self, now: float = T0) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now


def reading(
    t_end: float,
    values: Mapping[str, float] | None = None,
    counters: Mapping[str, float] | None = None,
    *,
    load: str = "main",
    duration: float = 1.0,
    minimum: Mapping[str, float] | None = None,
    maximum: Mapping[str, float] | None = None,
    tariff: int = 1,
    wiring: Wiring = Wiring.SINGLE_PHASE,
) -> Reading:
    """A reading ending at ``t_end``; extremes default to the values themselves."""
    values = dict(values or {})
    return Reading(
        load=load,
        wiring=wiring,
        timestamp_s=float(t_end),
        duration_s=duration,
        windows=5,
        values=values,
        minimum=dict(minimum if minimum is not None else values),
        maximum=dict(maximum if maximum is not None else values),
        counters=dict(counters or {}),
        tariff=tariff,
    )


def config(*tiers: tuple[int, float | None], commit_interval_s: float = 1.0) -> StoreConfig:
    """A store configuration of the given (resolution_s, retention_h) tiers."""
    return StoreConfig(
        tiers=[Tier(resolution_s=r, retention_h=h) for r, h in tiers],
        logging_interval_s=tiers[0][0],
        commit_interval_s=commit_interval_s,
    )


def open_store(
    path: Path, cfg: StoreConfig | None = None, clock: FakeClock | None = None
) -> LogStore:
    """A log store at ``path`` with a fake clock (default: standard tiers)."""
    return LogStore(path, cfg or StoreConfig(), clock=clock or FakeClock())


def submit_all(store: LogStore, readings: Iterable[Reading]) -> None:
    """Submit every reading."""
    for r in readings:
        store.submit(r)


def rows(path: Path, resolution_s: int) -> list[tuple[int, int, int, int]]:
    """(load_id, bucket_s, covered_us, data bytes) of every row of a tier, read directly."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            f"SELECT load_id, bucket_s, covered_us, data_bytes FROM log_{resolution_s}s_rows"
            " ORDER BY load_id, bucket_s"
        ).fetchall()
    finally:
        conn.close()


def weighted(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean of the finite values."""
    ok = np.isfinite(values)
    return float(np.sum(values[ok] * weights[ok]) / np.sum(weights[ok]))


def f32(x: float) -> float:
    """``x`` as stored in a float32 column."""
    return float(np.float32(x))


def close_to(a: float, b: float, rel: float = 2e-6) -> bool:
    """Equal within float32 storage precision."""
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)
