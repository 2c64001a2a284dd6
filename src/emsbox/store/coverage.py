"""Which tier's rows serve which part of a time range, and reading them as one block.

A query prefers one tier (the best for its resolution). Where that tier has no rows for the
older part of the range because retention deleted them (always whole buckets of the next
coarser tier), the next coarser tier serves that part
(and the next, further back); where it has none yet for the newest part because its buckets
have not closed, the next finer tier serves it (and the next). Parts meet on bucket
boundaries of the coarser tier involved, so no time is counted twice.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emsbox.store import tables
from emsbox.store.catalog import Catalog
from emsbox.store.row_format import IntArray, RowBlock, concatenate

# (oldest bucket start, newest bucket start) of each tier for one load; None: no rows.
Bounds = Sequence[tuple[int, int] | None]


@dataclass(frozen=True)
class Segment:
    """Rows of tier ``tier`` (an index) whose bucket starts in [start_s, end_s)."""

    tier: int
    start_s: int
    end_s: int


def _ceil_to(t: int, step: int) -> int:
    return -(-t // step) * step


def plan(
    bounds: Bounds, resolutions: Sequence[int], k: int, start_s: int, end_s: int
) -> list[Segment]:
    """The segments that cover [start_s, end_s) preferring tier ``k``, oldest first."""
    n = len(resolutions)
    segments: list[Segment] = []

    def own_start(oldest: int) -> int:
        # A tier takes over from the next coarser one at its oldest row: retention deletes
        # only whole buckets of the coarser tier, so from there on the tier holds all of them
        # (it starts mid-bucket only where logging itself began).
        return max(oldest, start_s)

    covered_to = start_s
    cut: int | None  # the older part [start_s, cut) still needs a coarser tier
    main = bounds[k]
    if main is None:
        cut = end_s
    else:
        s = own_start(main[0])
        e = min(end_s, main[1] + resolutions[k])
        if s < e:
            segments.append(Segment(k, s, e))
        covered_to = max(covered_to, e)
        cut = s if s > start_s else None
    older: list[Segment] = []
    for j in range(k + 1, n):
        if cut is None or cut <= start_s:
            break
        b = bounds[j]
        if b is None:
            continue
        # Rows that end by the cut (those starting before it, rounded down to this tier), or
        # every row starting in the range when no finer tier serves any of it.
        to = end_s if cut >= end_s else cut // resolutions[j] * resolutions[j]
        s = own_start(b[0])
        if s < to:
            older.append(Segment(j, s, to))
            covered_to = max(covered_to, min(to, b[1] + resolutions[j]))
        cut = s if s > start_s else None
    segments = older[::-1] + segments
    for j in range(k - 1, -1, -1):
        b = bounds[j]
        if b is None or covered_to >= end_s:
            continue
        data_end = b[1] + resolutions[j]
        if data_end > covered_to:
            segments.append(Segment(j, covered_to, end_s))
            covered_to = min(end_s, data_end)
    return segments


@dataclass(frozen=True)
class Span:
    """Rows read across tiers, in time order, each with the resolution of its tier."""

    block: RowBlock
    resolution_s: IntArray
    tier_resolution_s: int

    @property
    def end_s(self) -> IntArray:
        """End of each row's bucket."""
        return self.block.bucket_s + self.resolution_s


@dataclass(frozen=True)
class LogView:
    """What a query reads through: a connection inside a read transaction, names, tiers."""

    conn: sqlite3.Connection
    catalog: Catalog
    resolutions: Sequence[int]


def bounds_of(
    conn: sqlite3.Connection, resolutions: Sequence[int], load_id: int
) -> list[tuple[int, int] | None]:
    """Oldest and newest bucket start of the load in every tier."""
    return [tables.bucket_bounds(conn, r, load_id) for r in resolutions]


def read_span(
    view: LogView,
    load_id: int,
    *,
    tier: int,
    start_s: float,
    end_s: float,
    names: frozenset[str] | None,
) -> Span:
    """Rows of the load whose bucket starts in [start_s, end_s), preferring ``tier``."""
    resolutions = view.resolutions
    lo, hi = math.ceil(start_s), math.ceil(end_s)
    segments = plan(bounds_of(view.conn, resolutions, load_id), resolutions, tier, lo, hi)
    # The load's layouts once for every tier read, not once per tier.
    layouts = {} if names is None else view.catalog.layouts_of_load(view.conn, load_id)
    blocks = []
    res = []
    for seg in segments:
        r = resolutions[seg.tier]
        if names is None:
            block = tables.read_block(
                view.conn, view.catalog, r, load_id, start_s=seg.start_s, end_s=seg.end_s
            )
        else:
            block = tables.read_values(
                view.conn, r, load_id, layouts, start_s=seg.start_s, end_s=seg.end_s, names=names
            )
        blocks.append(block)
        res.append(np.full(len(block), r, dtype=np.int64))
    if not blocks:
        return Span(concatenate([]), np.zeros(0, dtype=np.int64), resolutions[tier])
    block = concatenate(blocks)
    resolution = np.concatenate(res)
    order = np.argsort(block.bucket_s, kind="stable")
    return Span(block.reordered(order), resolution[order], resolutions[tier])
