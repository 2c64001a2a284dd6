"""Reading and writing the rows of one tier table of one load."""

from __future__ import annotations

import sqlite3

import numpy as np

from emsbox.store.catalog import Catalog
from emsbox.store.row_format import (
    COUNTER_NAMES,
    COUNTERS_PREFIX_BYTES,
    Layout,
    RowBlock,
    StoredRow,
    decode,
    pack,
)
from emsbox.store.schema import BUCKET_BITS, key_range, pack_key, tier_table


def fetch(
    conn: sqlite3.Connection,
    resolution_s: int,
    load_id: int,
    start_s: int,
    end_s: int,
    *,
    counters_only: bool = False,
) -> list[StoredRow]:
    """Rows of the load whose bucket starts in [start_s, end_s), in time order.

    ``counters_only``: each blob cut after the counters (``decode`` then gives counters only).
    """
    lo, hi = key_range(load_id, start_s, end_s)
    # Only counters wanted (energy): read the start of each blob, where they all lie.
    data = f"substr(data, 1, {COUNTERS_PREFIX_BYTES})" if counters_only else "data"
    rows: list[StoredRow] = conn.execute(
        f"SELECT load_bucket - ?, layout_id, covered_us, {data} FROM {tier_table(resolution_s)}"
        " WHERE load_bucket >= ? AND load_bucket < ? ORDER BY load_bucket",
        (load_id << BUCKET_BITS, lo, hi),
    ).fetchall()
    return rows


def read_block(
    conn: sqlite3.Connection,
    catalog: Catalog,
    resolution_s: int,
    load_id: int,
    *,
    start_s: int,
    end_s: int,
    names: frozenset[str] | None = None,
) -> RowBlock:
    """Rows of the load whose bucket starts in [start_s, end_s), decoded."""
    counters_only = names is not None and names <= COUNTER_NAMES
    rows = fetch(conn, resolution_s, load_id, start_s, end_s, counters_only=counters_only)
    return decode(rows, catalog.layouts(conn, {r[1] for r in rows}), names)


def _edge(
    conn: sqlite3.Connection, resolution_s: int, load_id: int, lo: int, hi: int, *, order: str
) -> int | None:
    # ORDER BY … LIMIT 1 walks straight to one end of the key range; min() and max() together
    # in one query would scan every row between them.
    row = conn.execute(
        f"SELECT load_bucket FROM {tier_table(resolution_s)}"
        f" WHERE load_bucket >= ? AND load_bucket < ? ORDER BY load_bucket {order} LIMIT 1",
        (lo, hi),
    ).fetchone()
    return None if row is None else int(row[0]) - (load_id << BUCKET_BITS)


def bucket_bounds(
    conn: sqlite3.Connection, resolution_s: int, load_id: int
) -> tuple[int, int] | None:
    """Start of the oldest and of the newest bucket of the load in the tier, None if empty."""
    lo, hi = key_range(load_id, 0, 1 << BUCKET_BITS)
    oldest = _edge(conn, resolution_s, load_id, lo, hi, order="ASC")
    newest = _edge(conn, resolution_s, load_id, lo, hi, order="DESC")
    if oldest is None or newest is None:
        return None
    return oldest, newest


def first_bucket_from(
    conn: sqlite3.Connection, resolution_s: int, load_id: int, start_s: int
) -> int | None:
    """Start of the load's first bucket at or after ``start_s``, None if there is none."""
    lo, hi = key_range(load_id, start_s, 1 << BUCKET_BITS)
    return _edge(conn, resolution_s, load_id, lo, hi, order="ASC")


def last_row_before(
    conn: sqlite3.Connection, resolution_s: int, load_id: int, end_s: int
) -> StoredRow | None:
    """The load's last row whose bucket ends at or before ``end_s``."""
    lo, hi = key_range(load_id, 0, end_s - resolution_s + 1)
    row = conn.execute(
        f"SELECT load_bucket - ?, layout_id, covered_us, data FROM {tier_table(resolution_s)}"
        " WHERE load_bucket >= ? AND load_bucket < ? ORDER BY load_bucket DESC LIMIT 1",
        (load_id << BUCKET_BITS, lo, hi),
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]), bytes(row[3]))


def existing_buckets(
    conn: sqlite3.Connection, resolution_s: int, load_id: int, buckets: list[int]
) -> set[int]:
    """Which of ``buckets`` the tier holds for the load."""
    if not buckets:
        return set()
    lo, hi = key_range(load_id, min(buckets), max(buckets) + 1)
    rows = conn.execute(
        f"SELECT load_bucket - ? FROM {tier_table(resolution_s)}"
        " WHERE load_bucket >= ? AND load_bucket < ?",
        (load_id << BUCKET_BITS, lo, hi),
    ).fetchall()
    return {int(r[0]) for r in rows} & set(buckets)


def write(
    conn: sqlite3.Connection,
    catalog: Catalog,
    resolution_s: int,
    load_id: int,
    block: RowBlock,
    *,
    replace: bool,
) -> None:
    """Store every row of ``block``, each with the layout of the variables it holds.

    ``replace``: overwrite rows of the same buckets (roll-ups and merges); otherwise the
    buckets must be new.
    """
    if not len(block):
        return
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    sql = (
        f"{verb} INTO {tier_table(resolution_s)} (load_bucket, layout_id, covered_us, data)"
        " VALUES (?, ?, ?, ?)"
    )
    groups: dict[int, list[int]] = {}
    for i, k in enumerate(block.layout_index):
        groups.setdefault(int(k), []).append(i)
    covered_us = np.rint(block.covered_s * 1e6).astype(np.int64)
    params: list[tuple[int, int, int, bytes]] = []
    for k, row_numbers in groups.items():
        layout: Layout = block.row_layouts[k]
        layout_id = catalog.layout_id(conn, load_id, layout)
        rows = np.array(row_numbers, dtype=np.intp)
        for i, blob in zip(row_numbers, pack(block, layout, rows), strict=True):
            params.append(
                (pack_key(load_id, int(block.bucket_s[i])), layout_id, int(covered_us[i]), blob)
            )
    conn.executemany(sql, params)


def add_row_counts(conn: sqlite3.Connection, deltas: dict[tuple[int, int], int]) -> None:
    """Add ``deltas`` ((resolution_s, load_id) → rows) to the row counts."""
    changes = [(res, load, n) for (res, load), n in deltas.items() if n]
    conn.executemany(
        "INSERT INTO row_counts (resolution_s, load_id, rows) VALUES (?, ?, ?)"
        " ON CONFLICT (resolution_s, load_id) DO UPDATE SET rows = rows + excluded.rows",
        changes,
    )
