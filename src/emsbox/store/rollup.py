"""Aggregating rows into coarser buckets: roll-ups from tier to tier, and merges of a bucket.

Within a group: averages weighted by each row's covered time (rows with a value only), the
minimum of the minima, the maximum of the maxima, the last valid end value of each counter,
and the sum of covered times. A group keeps every variable any of its rows was stored with.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from emsbox.store import tables
from emsbox.store.catalog import Catalog
from emsbox.store.first_tier import MIN_WEIGHT_S
from emsbox.store.row_format import IntArray, Layout, RowBlock, union_of


def aggregate(block: RowBlock, group_s: IntArray, capacity_s: float | None = None) -> RowBlock:
    """One row per run of equal ``group_s`` (non-decreasing, one per row of ``block``).

    ``capacity_s`` caps each group's covered time (a bucket covers at most its own length).
    """
    n = len(block)
    if n == 0:
        return block
    starts = np.concatenate(([0], np.flatnonzero(np.diff(group_s)) + 1)).astype(np.intp)
    weight = np.maximum(block.covered_s, MIN_WEIGHT_S)[:, None]
    valid = np.isfinite(block.avg)
    w = np.where(valid, weight, 0.0)
    num = np.add.reduceat(np.where(valid, block.avg, 0.0) * w, starts, axis=0)
    den = np.add.reduceat(w, starts, axis=0)
    avg = np.full_like(num, np.nan)
    np.divide(num, den, out=avg, where=den > 0.0)
    minimum = np.fmin.reduceat(block.minimum, starts, axis=0)
    maximum = np.fmax.reduceat(block.maximum, starts, axis=0)
    # Last valid counter value of each group: the greatest row number holding one.
    rows = np.arange(n)[:, None]
    holder = np.where(np.isfinite(block.counters), rows, -1)
    last = np.maximum.reduceat(holder, starts, axis=0)
    counters = np.full(last.shape, np.nan)
    found = last >= 0
    if found.any():
        cols = np.broadcast_to(np.arange(last.shape[1]), last.shape)
        counters[found] = block.counters[last[found], cols[found]]
    covered = np.add.reduceat(block.covered_s, starts)
    if capacity_s is not None:
        covered = np.minimum(covered, capacity_s)
    row_layouts, layout_index = _group_layouts(block, starts)
    return RowBlock(
        block.layout,
        group_s[starts].astype(np.int64),
        covered,
        counters,
        avg,
        minimum,
        maximum,
        row_layouts,
        layout_index,
    )


def _group_layouts(block: RowBlock, starts: npt.NDArray[np.intp]) -> tuple[list[Layout], IntArray]:
    """The union of the stored layouts of each group's rows."""
    if len(block.row_layouts) == 1:
        return list(block.row_layouts), np.zeros(len(starts), dtype=np.int64)
    ends = np.append(starts[1:], len(block))
    found: dict[Layout, int] = {}
    index = np.zeros(len(starts), dtype=np.int64)
    for g, (a, b) in enumerate(zip(starts, ends, strict=True)):
        members = np.unique(block.layout_index[a:b])
        layout = union_of(block.row_layouts[int(k)] for k in members)
        index[g] = found.setdefault(layout, len(found))
    return list(found), index


@dataclass(frozen=True)
class RollupResult:
    """What one roll-up wrote: the coarse bucket starts, how many rows are new, the rows."""

    buckets: list[int]
    new_rows: int
    rows: RowBlock | None = None


def roll_up(
    conn: sqlite3.Connection,
    catalog: Catalog,
    load_id: int,
    *,
    finer_s: int,
    coarser_s: int,
    start_s: int,
    end_s: int,
) -> RollupResult:
    """(Re)compute the load's ``coarser_s`` buckets in [start_s, end_s) from the finer tier.

    ``start_s`` and ``end_s`` are multiples of ``coarser_s``. Existing coarse rows in the range
    are replaced, so rolling up again after late data arrived gives the right result.
    """
    block = tables.read_block(conn, catalog, finer_s, load_id, start_s=start_s, end_s=end_s)
    if not len(block):
        return RollupResult([], 0)
    groups = block.bucket_s // coarser_s * coarser_s
    rolled = aggregate(block, groups, float(coarser_s))
    buckets = [int(b) for b in rolled.bucket_s]
    existing = tables.existing_buckets(conn, coarser_s, load_id, buckets)
    tables.write(conn, catalog, coarser_s, load_id, rolled, replace=True)
    return RollupResult(buckets, len(buckets) - len(existing), rolled)
