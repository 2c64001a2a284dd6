"""Deleting expired rows, a small batch at a time so that the writer never stalls.

A row of a tier expires once its whole bucket lies more than ``retention_h`` in the past:
``bucket_start + resolution_s <= now − retention_h × 3600``. A row that the next tier has not
rolled up yet is kept whatever its age, so no data leaves the log before it has been
summarised.
"""

from __future__ import annotations

import math
import sqlite3

from emsbox.store.schema import key_range, tier_table

BATCH_ROWS = 5000


def expiry_limit(now_s: float, resolution_s: int, retention_h: float | None) -> int | None:
    """Buckets starting before this have expired (None: the tier is kept forever)."""
    if retention_h is None:
        return None
    cutoff = now_s - retention_h * 3600.0
    # bucket + resolution <= cutoff  <=>  bucket < floor(cutoff) - resolution + 1 (integers)
    return max(0, math.floor(cutoff) - resolution_s + 1)


def delete_expired(
    conn: sqlite3.Connection, resolution_s: int, load_id: int, before_s: int, limit: int
) -> int:
    """Delete up to ``limit`` of the load's oldest rows starting before ``before_s``."""
    lo, hi = key_range(load_id, 0, before_s)
    if hi <= lo:
        return 0
    table = tier_table(resolution_s)
    cursor = conn.execute(
        f"DELETE FROM {table} WHERE load_bucket IN (SELECT load_bucket FROM {table}"
        " WHERE load_bucket >= ? AND load_bucket < ? ORDER BY load_bucket LIMIT ?)",
        (lo, hi, limit),
    )
    return max(cursor.rowcount, 0)
