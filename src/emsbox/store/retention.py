"""Deleting expired rows, a small batch at a time so that the writer never stalls.

A row of a tier expires once its whole bucket lies more than ``retention_h`` in the past:
``bucket_start + resolution_s <= now − retention_h × 3600``. A row that the next tier has not
rolled up yet is kept whatever its age, so no data leaves the log before it has been
summarised. Where a coarser tier follows, rows go only in whole buckets of that tier, so a
tier holds either every row of a coarser bucket or none: a query can always take a tier
from its oldest row on (see ``coverage.plan``).
"""

from __future__ import annotations

import math
import sqlite3

from emsbox.store.schema import BUCKET_BITS, key_range, tier_table

BATCH_ROWS = 5000


def expiry_limit(now_s: float, resolution_s: int, retention_h: float | None) -> int | None:
    """Buckets starting before this have expired (None: the tier is kept forever)."""
    if retention_h is None:
        return None
    cutoff = now_s - retention_h * 3600.0
    # bucket + resolution <= cutoff  <=>  bucket < floor(cutoff) - resolution + 1 (integers)
    return max(0, math.floor(cutoff) - resolution_s + 1)


def delete_expired(
    conn: sqlite3.Connection,
    resolution_s: int,
    load_id: int,
    before_s: int,
    limit: int,
    *,
    whole_s: int | None = None,
) -> tuple[int, bool]:
    """Delete about ``limit`` of the load's oldest rows starting before ``before_s``; with
    ``whole_s`` (the next tier's resolution), only whole buckets of that length. Returns how
    many rows went and whether expired rows remain for another batch."""
    if whole_s is not None:
        # The coarse buckets whose last row (at whole − resolution) starts before before_s.
        before_s = (before_s + resolution_s - 1) // whole_s * whole_s
    lo, hi = key_range(load_id, 0, before_s)
    if hi <= lo:
        return 0, False
    table = tier_table(resolution_s)
    base = load_id << BUCKET_BITS
    stop = conn.execute(
        f"SELECT load_bucket FROM {table} WHERE load_bucket >= ? AND load_bucket < ?"
        " ORDER BY load_bucket LIMIT 1 OFFSET ?",
        (lo, hi, limit),
    ).fetchone()
    if stop is not None:  # more than a batch: end it on a whole bucket's boundary
        end_s = int(stop[0]) - base
        if whole_s is not None:
            first = conn.execute(
                f"SELECT min(load_bucket) FROM {table} WHERE load_bucket >= ?", (lo,)
            ).fetchone()[0]
            first_whole = (int(first) - base) // whole_s * whole_s
            # A coarse bucket holding more rows than a batch still goes in one piece.
            end_s = max(end_s // whole_s * whole_s, first_whole + whole_s)
        hi = min(hi, base + end_s)
    cursor = conn.execute(
        f"DELETE FROM {table} WHERE load_bucket >= ? AND load_bucket < ?", (lo, hi)
    )
    return max(cursor.rowcount, 0), stop is not None
