"""The row format: which variables a row holds (its layout) and how their values are packed.

A row's ``data`` blob is one record of ``Layout.dtype``, little-endian:

    float64 × n_counters   end value of each counter in the bucket
    float32 × n_inst       average of each instantaneous variable (tariff included)
    float32 × n_inst       minimum
    float32 × n_inst       maximum

NaN means "no valid value in this bucket". Counters are float64 because a 0.001 kWh step must
stay visible on a counter of millions of kWh (float32 keeps only 7 digits); measured values
are float32, whose 7 digits exceed any meter's accuracy.

``RowBlock`` is many rows decoded into float64 matrices over one (union) layout, the form in
which rows are rolled up, merged and queried.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

from emsbox import variables

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_ORDER = {v.name: i for i, v in enumerate(variables.ALL)}
COUNTER_NAMES = frozenset(variables.COUNTER_NAMES)


def canonical(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` without repeats, in vocabulary order (names outside it last, by name)."""
    return tuple(sorted(set(names), key=lambda n: (_ORDER.get(n, len(_ORDER)), n)))


@dataclass(frozen=True)
class Layout:
    """The variables of a row, in the order their values lie in its blob."""

    instantaneous: tuple[str, ...]
    counters: tuple[str, ...]

    @classmethod
    def of(cls, names: Iterable[str]) -> Layout:
        """The canonical layout of ``names``, split into counters and the rest."""
        ordered = canonical(names)
        return cls(
            tuple(n for n in ordered if n not in COUNTER_NAMES),
            tuple(n for n in ordered if n in COUNTER_NAMES),
        )

    @classmethod
    def from_text(cls, instantaneous: str, counters: str) -> Layout:
        """The layout stored as comma-separated names."""
        return cls(
            tuple(n for n in instantaneous.split(",") if n),
            tuple(n for n in counters.split(",") if n),
        )

    def as_text(self) -> tuple[str, str]:
        """The names as stored: comma-separated instantaneous names and counter names."""
        return ",".join(self.instantaneous), ",".join(self.counters)

    @property
    def names(self) -> frozenset[str]:
        """Every variable of the layout."""
        return frozenset(self.instantaneous) | frozenset(self.counters)

    @cached_property
    def dtype(self) -> np.dtype[np.void]:
        """The record type of one row's blob."""
        ni, nc = len(self.instantaneous), len(self.counters)
        return np.dtype(
            [
                ("c", "<f8", (nc,)),
                ("avg", "<f4", (ni,)),
                ("min", "<f4", (ni,)),
                ("max", "<f4", (ni,)),
            ]
        )

    def union(self, other: Layout) -> Layout:
        """Every variable of either layout."""
        if other == self:
            return self
        return Layout.of(self.names | other.names)

    def restricted(self, names: frozenset[str] | None) -> Layout:
        """Only the variables in ``names`` (all when None)."""
        if names is None:
            return self
        return Layout(
            tuple(n for n in self.instantaneous if n in names),
            tuple(n for n in self.counters if n in names),
        )


EMPTY_LAYOUT = Layout((), ())


def union_of(layouts: Iterable[Layout]) -> Layout:
    """Every variable of any of ``layouts``."""
    result = EMPTY_LAYOUT
    for layout in layouts:
        result = layout if result is EMPTY_LAYOUT else result.union(layout)
    return result


def _columns(sub: tuple[str, ...], full: tuple[str, ...]) -> npt.NDArray[np.intp]:
    index = {n: i for i, n in enumerate(full)}
    return np.array([index[n] for n in sub], dtype=np.intp)


@dataclass
class RowBlock:
    """Rows in time order, decoded over one layout; NaN where a row has no value.

    ``row_layouts[layout_index[i]]`` is the layout row ``i`` was stored with (its variables
    that exist, as opposed to those merely absent from it), so that aggregating rows keeps a
    variable absent where none of the rows had it.
    """

    layout: Layout
    bucket_s: IntArray
    covered_s: FloatArray
    counters: FloatArray
    avg: FloatArray
    minimum: FloatArray
    maximum: FloatArray
    row_layouts: list[Layout] = field(default_factory=list)
    layout_index: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.bucket_s)

    @classmethod
    def empty(cls, layout: Layout) -> RowBlock:
        """No rows."""
        ni, nc = len(layout.instantaneous), len(layout.counters)
        return cls(
            layout,
            np.zeros(0, dtype=np.int64),
            np.zeros(0),
            np.zeros((0, nc)),
            np.zeros((0, ni)),
            np.zeros((0, ni)),
            np.zeros((0, ni)),
            [layout],
            np.zeros(0, dtype=np.int64),
        )

    def instant(self, name: str) -> tuple[FloatArray, FloatArray, FloatArray] | None:
        """Average, minimum and maximum of an instantaneous variable (None if not held)."""
        if name not in self.layout.instantaneous:
            return None
        j = self.layout.instantaneous.index(name)
        return self.avg[:, j], self.minimum[:, j], self.maximum[:, j]

    def counter(self, name: str) -> FloatArray | None:
        """End values of a counter (None if not held)."""
        if name not in self.layout.counters:
            return None
        return self.counters[:, self.layout.counters.index(name)]

    def reordered(self, order: npt.NDArray[np.intp]) -> RowBlock:
        """The rows taken in ``order``."""
        return RowBlock(
            self.layout,
            self.bucket_s[order],
            self.covered_s[order],
            self.counters[order],
            self.avg[order],
            self.minimum[order],
            self.maximum[order],
            self.row_layouts,
            self.layout_index[order],
        )

    def expanded(self, layout: Layout) -> RowBlock:
        """The same rows over ``layout`` (a superset of this block's): NaN in the new columns."""
        if layout == self.layout:
            return self
        n = len(self)
        ci = _columns(self.layout.counters, layout.counters)
        ii = _columns(self.layout.instantaneous, layout.instantaneous)
        counters = np.full((n, len(layout.counters)), np.nan)
        counters[:, ci] = self.counters
        mats = []
        for src in (self.avg, self.minimum, self.maximum):
            dst = np.full((n, len(layout.instantaneous)), np.nan)
            dst[:, ii] = src
            mats.append(dst)
        return RowBlock(
            layout,
            self.bucket_s,
            self.covered_s,
            counters,
            mats[0],
            mats[1],
            mats[2],
            self.row_layouts,
            self.layout_index,
        )


def concatenate(blocks: Sequence[RowBlock]) -> RowBlock:
    """The rows of every block, in the order given, over the union of their layouts."""
    blocks = [b for b in blocks if len(b)] or list(blocks[:1])
    if not blocks:
        return RowBlock.empty(EMPTY_LAYOUT)
    if len(blocks) == 1:
        return blocks[0]
    layout = union_of(b.layout for b in blocks)
    wide = [b.expanded(layout) for b in blocks]
    row_layouts: list[Layout] = []
    indices = []
    for b in wide:
        indices.append(b.layout_index + len(row_layouts))
        row_layouts.extend(b.row_layouts)
    return RowBlock(
        layout,
        np.concatenate([b.bucket_s for b in wide]),
        np.concatenate([b.covered_s for b in wide]),
        np.concatenate([b.counters for b in wide]),
        np.concatenate([b.avg for b in wide]),
        np.concatenate([b.minimum for b in wide]),
        np.concatenate([b.maximum for b in wide]),
        row_layouts,
        np.concatenate(indices),
    )


StoredRow = tuple[int, int, int, bytes]  # (bucket start s, layout id, covered µs, data)


def decode(
    rows: Sequence[StoredRow],
    layouts: Mapping[int, Layout],
    names: frozenset[str] | None = None,
) -> RowBlock:
    """Stored rows as one block over the union of their layouts (restricted to ``names``)."""
    if not rows:
        return RowBlock.empty(EMPTY_LAYOUT)
    buckets, layout_ids, covered, data = zip(*rows, strict=True)
    ids = np.array(layout_ids, dtype=np.int64)
    unique_ids = sorted(set(layout_ids))
    row_layouts = [layouts[i].restricted(names) for i in unique_ids]
    layout = union_of(row_layouts)
    n = len(rows)
    block = RowBlock(
        layout,
        np.array(buckets, dtype=np.int64),
        np.array(covered, dtype=np.float64) / 1e6,
        np.full((n, len(layout.counters)), np.nan),
        np.full((n, len(layout.instantaneous)), np.nan),
        np.full((n, len(layout.instantaneous)), np.nan),
        np.full((n, len(layout.instantaneous)), np.nan),
        row_layouts,
        np.searchsorted(np.array(unique_ids), ids).astype(np.int64),
    )
    for k, layout_id in enumerate(unique_ids):
        stored = layouts[layout_id]
        if len(unique_ids) > 1:
            at = np.flatnonzero(ids == layout_id)
            blobs = [data[i] for i in at.tolist()]
        else:
            at = np.arange(n)
            blobs = list(data)
        wanted = row_layouts[k]
        records = np.frombuffer(b"".join(blobs), dtype=stored.dtype)
        if wanted.counters:
            src = _columns(wanted.counters, stored.counters)
            dst = _columns(wanted.counters, layout.counters)
            block.counters[np.ix_(at, dst)] = records["c"][:, src]
        if wanted.instantaneous:
            src = _columns(wanted.instantaneous, stored.instantaneous)
            dst = _columns(wanted.instantaneous, layout.instantaneous)
            for field_name, target in (
                ("avg", block.avg),
                ("min", block.minimum),
                ("max", block.maximum),
            ):
                target[np.ix_(at, dst)] = records[field_name][:, src]
    return block


def pack(block: RowBlock, layout: Layout, rows: npt.NDArray[np.intp]) -> list[bytes]:
    """The blobs of ``block``'s ``rows`` stored with ``layout`` (a subset of block.layout).

    Values that are not finite in float32 (NaN, infinities, overflow) are stored as NaN.
    """
    records = np.zeros(len(rows), dtype=layout.dtype)
    if layout.counters:
        cols = _columns(layout.counters, block.layout.counters)
        c = block.counters[np.ix_(rows, cols)]
        records["c"] = np.where(np.isfinite(c), c, np.nan)
    if layout.instantaneous:
        cols = _columns(layout.instantaneous, block.layout.instantaneous)
        with np.errstate(over="ignore", invalid="ignore"):
            for field_name, src in (
                ("avg", block.avg),
                ("min", block.minimum),
                ("max", block.maximum),
            ):
                v = src[np.ix_(rows, cols)].astype(np.float32)
                records[field_name] = np.where(np.isfinite(v), v, np.float32(np.nan))
    data = records.tobytes()
    size = layout.dtype.itemsize
    return [data[i * size : (i + 1) * size] for i in range(len(rows))]
