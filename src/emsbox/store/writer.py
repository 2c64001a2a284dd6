"""The writer's work: readings into first-tier rows, roll-ups, retention; one pass at a time.

A pass runs in one transaction: it writes the first-tier buckets that closed, rolls up every
coarser bucket that closed, deletes a batch of expired rows, keeps the row counts in step, and
commits. ``LogStore`` runs passes on its one writer thread; nothing else writes.

When a bucket closes. A first-tier bucket closes when a reading of a later bucket arrives, at
flush and close, or once the clock is ``CLOCK_GRACE_S`` past its end (a source that stopped).
A coarser bucket closes once every finer bucket in it is written: when the load's open
first-tier bucket has moved past it, or, with none open, when the clock is ``CLOCK_GRACE_S``
past its end. Each tier is rolled up from the rows committed in the tier below, so a restart
catches up on whatever closed while the program was not running.

Late data. A first-tier bucket may be written again: after a restart, readings of the bucket
that was open at close arrive, or the clock stepped back. The stored row and the new readings
are merged (time-weighted averages, extremes of both, counters from the new readings), never
duplicated (the key is (load, bucket)), and every coarser bucket that already held the old row
is rolled up again.
"""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from emsbox.bus import Reading
from emsbox.store import rollup, tables
from emsbox.store.catalog import Catalog
from emsbox.store.config import StoreConfig
from emsbox.store.first_tier import OpenBucket, bucket_of
from emsbox.store.outbox import OutboxWriter
from emsbox.store.retention import BATCH_ROWS, delete_expired, expiry_limit
from emsbox.store.row_format import RowBlock, concatenate

# How far past a bucket's end the clock must be before the bucket is closed without a later
# reading: readings reach the store a second or two after their cycle ends.
CLOCK_GRACE_S = 10.0
# Most finer rows read by one roll-up, so that catching up on a long absence is done in
# steps of bounded memory and time, each its own commit.
ROLLUP_CHUNK_ROWS = 20_000
# Retention runs at least this often (clock seconds), and at every flush.
RETENTION_INTERVAL_S = 60.0
# Attempts to commit the same closed buckets before they are given up.
MAX_ATTEMPTS = 3


@dataclass
class LoadState:
    """What the writer knows of one load between passes."""

    name: str
    load_id: int | None
    # Start of the newest first-tier bucket stored.
    newest_first_s: int | None
    # rolled_through[k]: tier k's buckets before this are rolled up (index 0 unused).
    rolled_through: list[int | None]
    open: OpenBucket | None = None


@dataclass
class PassResult:
    """What a pass left to do: roll-ups (flush waits for them) and expired rows."""

    rollup_backlog: bool = False
    retention_backlog: bool = False
    outbox_dropped: int = 0  # records dropped from the full outbox
    errors: list[str] = field(default_factory=list)


class LogWriter:
    """The writer's state and the work of one pass (used by one thread at a time)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        config: StoreConfig,
        clock: Callable[[], float],
        catalog: Catalog,
    ) -> None:
        self._conn = conn
        self._clock = clock
        self._catalog = catalog
        self._res = [t.resolution_s for t in config.tiers]
        self._retention = [t.retention_h for t in config.tiers]
        self._logged_s = config.logging_interval_s
        self.outbox = OutboxWriter(conn)
        self._states: dict[str, LoadState] = {}
        self._pending: list[tuple[str, OpenBucket]] = []
        self._attempts = 0
        self._last_retention_s = -math.inf
        self._retention_backlog = False
        self.reload()

    # -- state from the database ----------------------------------------------------------

    def reload(self) -> None:
        """Rebuild what the writer knows from the committed database (at start, after errors)."""
        self._catalog.refresh(self._conn)
        open_buckets = {name: st.open for name, st in self._states.items() if st.open}
        self._states = {}
        for name, load_id in self._catalog.load_ids().items():
            self._states[name] = self._state_from_db(name, load_id)
        for name, bucket in open_buckets.items():
            self._state(name).open = bucket

    def _state_from_db(self, name: str, load_id: int) -> LoadState:
        bounds = [tables.bucket_bounds(self._conn, r, load_id) for r in self._res]
        rolled: list[int | None] = [None]
        for k in range(1, len(self._res)):
            mine, finer = bounds[k], bounds[k - 1]
            if mine is not None:
                rolled.append(mine[1] + self._res[k])
            elif finer is not None:
                rolled.append(finer[0] // self._res[k] * self._res[k])
            else:
                rolled.append(None)
        newest = bounds[0][1] if bounds[0] is not None else None
        return LoadState(name, load_id, newest, rolled)

    def _state(self, name: str) -> LoadState:
        st = self._states.get(name)
        if st is None:
            st = LoadState(name, None, None, [None] * len(self._res))
            self._states[name] = st
        return st

    # -- the pass ---------------------------------------------------------------------------

    def run_pass(self, readings: Iterable[Reading], final: bool) -> PassResult:
        """Take in ``readings``, write what closed, roll up, expire; one transaction.

        ``final`` (flush, close) also writes every open bucket and runs retention. Errors in
        single readings are returned in ``errors``; a database error rolls the transaction
        back and is raised, and the same buckets are tried again on the next pass.
        """
        result = PassResult()
        for reading in readings:
            try:
                self._ingest(reading)
            except Exception as e:  # a bad reading must never stop the writer
                result.errors.append(f"reading skipped: {' '.join(str(e).split())}")
        now = self._clock()
        self._close_open_buckets(now, final)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            counts: dict[tuple[int, int], int] = defaultdict(int)
            dirty: set[tuple[str, int, int]] = set()
            self._write_first_tier(counts, dirty)
            result.rollup_backlog = self._roll_up(now, counts, dirty)
            due = now - self._last_retention_s >= RETENTION_INTERVAL_S
            if final or due or self._retention_backlog:
                result.retention_backlog = self._expire(now, counts)
                self._last_retention_s = now
            tables.add_row_counts(conn, counts)
            result.outbox_dropped = self.outbox.finish(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.outbox.reload(conn)
            self._attempts += 1
            if self._attempts >= MAX_ATTEMPTS:
                result.errors.append(f"gave up {len(self._pending)} first-tier buckets")
                self._pending.clear()
                self._attempts = 0
            self.reload()
            raise
        self._pending.clear()
        self._attempts = 0
        self._retention_backlog = result.retention_backlog
        return result

    def _ingest(self, reading: Reading) -> None:
        bucket = bucket_of(reading, self._res[0])
        st = self._state(reading.load)
        if st.open is not None and st.open.bucket_s != bucket:
            self._pending.append((st.name, st.open))
            st.open = None
        if st.open is None:
            st.open = OpenBucket(bucket)
        st.open.add(reading)

    def _close_open_buckets(self, now: float, final: bool) -> None:
        for st in self._states.values():
            if st.open is None:
                continue
            if final or st.open.bucket_s + self._res[0] <= now - CLOCK_GRACE_S:
                self._pending.append((st.name, st.open))
                st.open = None

    def _write_first_tier(
        self, counts: dict[tuple[int, int], int], dirty: set[tuple[str, int, int]]
    ) -> None:
        res = self._res[0]
        for name, bucket in self._pending:
            # _state: after a failed pass the load may be new again (its row rolled back).
            st = self._state(name)
            if st.load_id is None:
                st.load_id = self._catalog.create_load(self._conn, name)
            load_id = st.load_id
            block = bucket.to_block(res)
            b = bucket.bucket_s
            stored = None
            if st.newest_first_s is not None and b <= st.newest_first_s:
                stored = tables.read_block(
                    self._conn, self._catalog, res, load_id, start_s=b, end_s=b + 1
                )
            if stored is not None and len(stored):
                # The bucket was written before (closed at flush or close, or the clock went
                # back): merge, the new readings being the later ones.
                both = concatenate([stored, block])
                merged = rollup.aggregate(both, np.array([b, b], dtype=np.int64), float(res))
                tables.write(self._conn, self._catalog, res, load_id, merged, replace=True)
                self._logged(name, res, merged)
            else:
                tables.write(self._conn, self._catalog, res, load_id, block, replace=False)
                counts[(res, load_id)] += 1
                self._logged(name, res, block)
            st.newest_first_s = b if st.newest_first_s is None else max(st.newest_first_s, b)
            self._written(st, 0, [b], dirty)

    def _logged(self, name: str, resolution_s: int, rows: RowBlock | None) -> None:
        """Rows were written to a tier: those of the logging tier go to the outbox too."""
        if resolution_s == self._logged_s and rows is not None:
            self.outbox.add(self._conn, name, resolution_s, rows)

    def _written(
        self, st: LoadState, k: int, buckets: list[int], dirty: set[tuple[str, int, int]]
    ) -> None:
        """Note buckets written to tier k: the next tier must roll them up (again)."""
        if k + 1 >= len(self._res) or not buckets:
            return
        coarse = self._res[k + 1]
        through = st.rolled_through[k + 1]
        if through is None:
            st.rolled_through[k + 1] = min(buckets) // coarse * coarse
            return
        for b in buckets:
            if b < through:
                dirty.add((st.name, k + 1, b // coarse * coarse))

    def _horizon(self, st: LoadState, now: float) -> int:
        """First-tier data of the load is complete before this time."""
        if st.open is not None:
            return st.open.bucket_s
        newest_end = (
            st.newest_first_s + self._res[0] if st.newest_first_s is not None else -math.inf
        )
        return math.floor(max(now - CLOCK_GRACE_S, newest_end))

    def _roll_up(
        self,
        now: float,
        counts: dict[tuple[int, int], int],
        dirty: set[tuple[str, int, int]],
    ) -> bool:
        backlog = False
        for st in self._states.values():
            if st.load_id is None:
                continue
            complete_to = self._horizon(st, now)
            for k in range(1, len(self._res)):
                self._reroll(st, k, now, counts, dirty)
                backlog |= self._catch_up(st, k, complete_to, counts, dirty)
                through = st.rolled_through[k]
                if through is not None:
                    complete_to = through
        return backlog

    def _reroll(
        self,
        st: LoadState,
        k: int,
        now: float,
        counts: dict[tuple[int, int], int],
        dirty: set[tuple[str, int, int]],
    ) -> None:
        """Roll up again the tier-k buckets whose finer rows changed."""
        assert st.load_id is not None
        finer, coarse = self._res[k - 1], self._res[k]
        # A bucket whose finer rows may already be partly deleted is left as it is.
        expired = expiry_limit(now, finer, self._retention[k - 1])
        for name, tier, b in sorted(dirty):
            if name != st.name or tier != k or (expired is not None and b < expired):
                continue
            done = rollup.roll_up(
                self._conn,
                self._catalog,
                st.load_id,
                finer_s=finer,
                coarser_s=coarse,
                start_s=b,
                end_s=b + coarse,
            )
            counts[(coarse, st.load_id)] += done.new_rows
            self._logged(st.name, coarse, done.rows)
            self._written(st, k, done.buckets, dirty)

    def _catch_up(
        self,
        st: LoadState,
        k: int,
        complete_to: int,
        counts: dict[tuple[int, int], int],
        dirty: set[tuple[str, int, int]],
    ) -> bool:
        """Roll up tier k's closed buckets not yet rolled up; True if more remain."""
        assert st.load_id is not None
        finer, coarse = self._res[k - 1], self._res[k]
        start = st.rolled_through[k]
        target = complete_to // coarse * coarse
        if start is None or target <= start:
            return False
        first = tables.first_bucket_from(self._conn, finer, st.load_id, start)
        if first is None or first >= target:
            st.rolled_through[k] = target
            return False
        # Skip a stretch without data in one step rather than chunk by chunk.
        start = max(start, first // coarse * coarse)
        span = max(coarse, ROLLUP_CHUNK_ROWS * finer // coarse * coarse)
        end = min(target, start + span)
        done = rollup.roll_up(
            self._conn,
            self._catalog,
            st.load_id,
            finer_s=finer,
            coarser_s=coarse,
            start_s=start,
            end_s=end,
        )
        counts[(coarse, st.load_id)] += done.new_rows
        self._logged(st.name, coarse, done.rows)
        st.rolled_through[k] = end
        self._written(st, k, done.buckets, dirty)
        return end < target

    def _expire(self, now: float, counts: dict[tuple[int, int], int]) -> bool:
        backlog = False
        for st in self._states.values():
            if st.load_id is None:
                continue
            for k, res in enumerate(self._res):
                limit = expiry_limit(now, res, self._retention[k])
                if limit is None:
                    continue
                whole: int | None = None
                if k + 1 < len(self._res):
                    # Never delete what the next tier has not rolled up yet.
                    through = st.rolled_through[k + 1]
                    if through is None:
                        continue
                    limit = min(limit, through)
                    whole = self._res[k + 1]
                deleted, more = delete_expired(
                    self._conn, res, st.load_id, limit, BATCH_ROWS, whole_s=whole
                )
                counts[(res, st.load_id)] -= deleted
                backlog |= more
        return backlog
