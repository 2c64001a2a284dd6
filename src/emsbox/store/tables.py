"""Reading and writing the rows of one tier table of one load."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

import numpy as np

from emsbox.store.catalog import Catalog
from emsbox.store.row_format import (
    EMPTY_LAYOUT,
    FloatArray,
    Layout,
    RowBlock,
    StoredRow,
    concatenate,
    decode,
    pack,
)
from emsbox.store.schema import BUCKET_BITS, key_range, pack_key, tier_table


def fetch(
    conn: sqlite3.Connection, resolution_s: int, load_id: int, start_s: int, end_s: int
) -> list[StoredRow]:
    """Rows of the load whose bucket starts in [start_s, end_s), in time order."""
    lo, hi = key_range(load_id, start_s, end_s)
    rows: list[StoredRow] = conn.execute(
        f"SELECT load_bucket - ?, layout_id, covered_us, data FROM {tier_table(resolution_s)}"
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
) -> RowBlock:
    """Rows of the load whose bucket starts in [start_s, end_s), every value decoded."""
    rows = fetch(conn, resolution_s, load_id, start_s, end_s)
    return decode(rows, catalog.layouts(conn, {r[1] for r in rows}))


def read_values(
    conn: sqlite3.Connection,
    resolution_s: int,
    load_id: int,
    layouts: Mapping[int, Layout],
    *,
    start_s: int,
    end_s: int,
    names: frozenset[str],
) -> RowBlock:
    """The ``names`` of the load's rows whose bucket starts in [start_s, end_s).

    ``layouts`` are the load's layouts by id (``Catalog.layouts_of_load``); only rows stored
    with any of ``names`` are read.
    """
    blocks = [
        _read_columns(
            conn,
            resolution_s,
            load_id,
            layout_id=layout_id,
            stored=stored,
            wanted=stored.restricted(names),
            start_s=start_s,
            end_s=end_s,
        )
        for layout_id, stored in layouts.items()
        if stored.restricted(names).names
    ]
    if len(blocks) <= 1:
        return blocks[0] if blocks else RowBlock.empty(EMPTY_LAYOUT)
    block = concatenate(blocks)
    return block.reordered(np.argsort(block.bucket_s, kind="stable"))


def _read_columns(
    conn: sqlite3.Connection,
    resolution_s: int,
    load_id: int,
    *,
    layout_id: int,
    stored: Layout,
    wanted: Layout,
    start_s: int,
    end_s: int,
) -> RowBlock:
    """The ``wanted`` values of the rows stored with one layout, cut out of the blobs by SQLite.

    A history of one variable needs 12 of a row's ~800 bytes and an energy query 56: SQLite
    returns only the stretch of each blob that holds them (``substr`` on a blob is a byte
    slice), one value per row, since every further column costs more than the bytes saved.
    """
    record = stored.dtype
    fields: list[tuple[str, str, int]] = []  # (part, name, byte offset in the blob)
    base = record.fields
    assert base is not None
    for name in wanted.counters:
        fields.append(("c", name, base["c"][1] + 8 * stored.counters.index(name)))
    for part in ("avg", "min", "max"):
        for name in wanted.instantaneous:
            fields.append((part, name, base[part][1] + 4 * stored.instantaneous.index(name)))
    first = min(f[2] for f in fields)
    last = max(f[2] + (8 if f[0] == "c" else 4) for f in fields)
    lo, hi = key_range(load_id, start_s, end_s)
    rows = conn.execute(
        f"SELECT load_bucket - ?, covered_us, substr(data, {first + 1}, {last - first})"
        f" FROM {tier_table(resolution_s)}"
        " WHERE load_bucket >= ? AND load_bucket < ? AND layout_id = ? ORDER BY load_bucket",
        (load_id << BUCKET_BITS, lo, hi, layout_id),
    ).fetchall()
    if not rows:
        return RowBlock.empty(wanted)
    buckets, covered, data = zip(*rows, strict=True)
    values = np.frombuffer(
        b"".join(data),
        dtype=np.dtype(
            {
                "names": [f"{part}:{name}" for part, name, _ in fields],
                "formats": ["<f8" if part == "c" else "<f4" for part, _, _ in fields],
                "offsets": [offset - first for _, _, offset in fields],
                "itemsize": last - first,
            }
        ),
    )

    def matrix(part: str, names: tuple[str, ...]) -> FloatArray:
        out = np.empty((len(rows), len(names)))
        for j, name in enumerate(names):
            out[:, j] = values[f"{part}:{name}"]
        return out

    return RowBlock(
        wanted,
        np.array(buckets, dtype=np.int64),
        np.array(covered, dtype=np.float64) / 1e6,
        matrix("c", wanted.counters),
        matrix("avg", wanted.instantaneous),
        matrix("min", wanted.instantaneous),
        matrix("max", wanted.instantaneous),
        [wanted],
        np.zeros(len(rows), dtype=np.int64),
    )


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
