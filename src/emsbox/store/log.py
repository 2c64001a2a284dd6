"""The data logger: readings into a tiered SQLite log, and history and energy out of it.

One writer thread owns the only connection that writes. ``submit`` only appends to a queue;
the writer takes the queue every ``commit_interval_s`` (at once on ``flush``) and runs a pass
in one transaction (``emsbox.store.writer``): closed first-tier buckets, due roll-ups, a batch
of expired rows. Queries run on a small pool of read-only connections, each used by one
thread at a time; WAL lets them read a consistent snapshot while the writer writes.

Errors never stop the writer: a bad reading is skipped, a failed transaction is rolled back
and tried again on the next pass; either is kept as ``stats().last_error``.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

from emsbox.bus import Reading
from emsbox.store import coverage, energy_periods, history, outbox, schema
from emsbox.store.catalog import Catalog
from emsbox.store.config import StoreConfig
from emsbox.store.energy_periods import EnergyPeriod
from emsbox.store.history import History
from emsbox.store.outbox import OutboxStats
from emsbox.store.writer import LogWriter, PassResult

__all__ = [
    "EnergyPeriod",
    "History",
    "LogStore",
    "OutboxStats",
    "StoreError",
    "StoreStats",
    "TierStats",
]

# Readings waiting for the writer beyond this are dropped, oldest first (counted): about an
# hour of 11 loads, so a stuck disk cannot exhaust memory.
MAX_QUEUED = 40_000
READ_CONNECTIONS = 4
JOIN_TIMEOUT_S = 30.0

T = TypeVar("T")


class StoreError(Exception):
    """The log cannot be opened or used; the message is one line."""


@dataclass(frozen=True)
class TierStats:
    """One tier: its rows and the start of its oldest and newest bucket (None when empty)."""

    resolution_s: int
    retention_h: float | None
    rows: int
    oldest_s: float | None
    newest_s: float | None


@dataclass(frozen=True)
class StoreStats:
    """The state of the log, for health reports."""

    tiers: list[TierStats]
    file_bytes: int
    queued: int
    last_commit_s: float | None
    last_error: str | None
    last_error_s: float | None
    dropped: int


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class _ReaderPool:
    """Up to ``size`` read-only connections, each lent to one thread at a time."""

    def __init__(self, path: Path, size: int) -> None:
        self._path = path
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._size = size
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = self._acquire()
        try:
            yield conn
        finally:
            with self._lock:
                closed = self._closed
            if closed:
                conn.close()
            else:
                self._idle.put(conn)

    def _acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise StoreError("the log is closed")
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                pass
            if len(self._all) < self._size:
                conn = schema.connect(self._path, query_only=True)
                self._all.append(conn)
                return conn
        try:
            return self._idle.get(timeout=JOIN_TIMEOUT_S)
        except queue.Empty:
            raise StoreError("no read connection came free in time") from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class LogStore:
    """The tiered log of every load's readings in one SQLite file (see the module docstring).

    ``clock`` gives the wall-clock time that closes buckets of a source that went quiet,
    drives retention and stamps commits; tests inject a fake one.
    """

    def __init__(
        self, path: Path, config: StoreConfig, clock: Callable[[], float] = time.time
    ) -> None:
        self._path = Path(path)
        self._config = config
        self._clock = clock
        self._resolutions = [t.resolution_s for t in config.tiers]
        self._catalog = Catalog()
        try:
            conn = schema.open_log(self._path)
        except schema.SchemaError as e:
            raise StoreError(str(e)) from e
        try:
            schema.ensure_tier_tables(conn, self._resolutions)
            self._writer = LogWriter(conn, config, clock, self._catalog)
        except sqlite3.Error as e:
            conn.close()
            raise StoreError(f"cannot use log {self._path}: {_one_line(e)}") from e
        self._conn = conn
        self._readers = _ReaderPool(self._path, READ_CONNECTIONS)
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._queue: deque[Reading] = deque()
        # Flush requests are numbered; the writer notes the last one whose readings it
        # committed (final_done) and the last after which no roll-up was left (flush_done).
        self._flush_requested = 0
        self._final_done = 0
        self._flush_done = 0
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._last_commit_s: float | None = None
        self._last_error: str | None = None
        self._last_error_s: float | None = None
        self._dropped = 0
        self._outbox_ack: int | None = None
        self._outbox_max: int | None = None
        # Set after a pass committed new outbox records, so a forwarder need not poll.
        self.outbox_filled = threading.Event()

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    # -- writing --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread; its first pass catches up on roll-ups missed while closed."""
        with self._cond:
            if self._closed or self._stopping:
                raise StoreError("the log is closed")
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
            self._thread.start()

    def submit(self, reading: Reading) -> None:
        """Queue a reading for the writer; never blocks. Dropped (counted) once closing."""
        with self._cond:
            if self._stopping or self._closed:
                self._dropped += 1
                return
            if len(self._queue) >= MAX_QUEUED:
                self._queue.popleft()
                self._dropped += 1
            self._queue.append(reading)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Return once everything submitted before the call is committed, open buckets too.

        Due roll-ups are done as well. Raises StoreError if that takes longer than
        ``timeout_s`` (e.g. the disk fails), with the writer's last error.
        """
        self._flush(timeout_s, catch_up=True)

    def _flush(self, timeout_s: float, catch_up: bool) -> None:
        """Flush; ``catch_up``: also wait until no roll-up is left to do."""
        with self._cond:
            if self._closed:
                raise StoreError("the log is closed")
            running = self._thread is not None and not self._stopping
            if running:
                self._flush_requested += 1
                wanted = self._flush_requested
                self._cond.notify_all()
        if not running:
            self._flush_here(timeout_s, catch_up)
            return
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while (self._flush_done if catch_up else self._final_done) < wanted:
                remaining = deadline - time.monotonic()
                if remaining <= 0.0:
                    detail = f": {self._last_error}" if self._last_error else ""
                    raise StoreError(f"flush timed out after {timeout_s:g} s{detail}")
                self._cond.wait(remaining)

    def close(self) -> None:
        """Flush, run due roll-ups, stop the writer and close every connection; idempotent.

        A long catch-up of roll-ups (after a long stop) is not waited for: it resumes at the
        next start. Raises StoreError if the final flush failed (everything is closed all the
        same).
        """
        with self._close_lock:
            if self._closed:
                return
            error: StoreError | None = None
            try:
                self._flush(JOIN_TIMEOUT_S, catch_up=False)
            except StoreError as e:
                error = e
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
                thread = self._thread
            if thread is not None:
                thread.join(JOIN_TIMEOUT_S)
            with self._cond:
                self._closed = True
            self._readers.close()
            with self._write_lock:
                self._conn.close()
            if error is not None:
                raise error

    def _run(self) -> None:
        """The writer thread: a pass every commit interval, at once when asked or behind."""
        wait_s = 0.0  # the first pass catches up at once
        while True:
            with self._cond:
                if wait_s > 0.0 and not self._stopping and not self._flush_wanted():
                    self._cond.wait(wait_s)
                readings = list(self._queue)
                self._queue.clear()
                generation = self._flush_requested
                stopping = self._stopping
            final = stopping or generation > self._flush_done
            result = self._pass(readings, final)
            with self._cond:
                if result is not None and final:
                    self._final_done = max(self._final_done, generation)
                    if not result.rollup_backlog:
                        self._flush_done = max(self._flush_done, generation)
                self._cond.notify_all()
            if stopping:
                return
            behind = result is not None and (result.rollup_backlog or result.retention_backlog)
            wait_s = 0.0 if behind else self._config.commit_interval_s

    def _flush_wanted(self) -> bool:
        return self._flush_requested > self._flush_done

    def _flush_here(self, timeout_s: float, catch_up: bool) -> None:
        """Flush on the calling thread when no writer thread runs (before start, at close)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            readings = list(self._queue)
            self._queue.clear()
        while True:
            result = self._pass(readings, final=True)
            if result is None:
                raise StoreError(f"flush failed: {self._last_error}")
            if not (catch_up and result.rollup_backlog):
                return
            if time.monotonic() > deadline:
                raise StoreError(f"flush timed out after {timeout_s:g} s catching up roll-ups")
            readings = []

    def _pass(self, readings: list[Reading], final: bool) -> PassResult | None:
        """One writer pass; None if it failed (the error is recorded)."""
        with self._cond:
            acknowledged = self._outbox_ack
        with self._write_lock:
            box = self._writer.outbox
            box.acknowledged = acknowledged
            before = box.newest
            try:
                result = self._writer.run_pass(readings, final)
            except Exception as e:  # the writer keeps running whatever happens
                self._record_error(f"write failed: {_one_line(e)}")
                return None
            added = box.newest is not None and (before is None or box.newest > before)
        with self._cond:
            self._last_commit_s = self._clock()
        for message in result.errors:
            self._record_error(message)
        if result.outbox_dropped:
            self._record_error(
                f"outbox full: the {result.outbox_dropped} oldest records were dropped"
            )
        if added:
            self.outbox_filled.set()
        return result

    # -- the outbox -------------------------------------------------------------------------

    def set_outbox(self, max_records: int | None) -> None:
        """Put every logged record in the outbox from now on, keeping at most ``max_records``
        (the oldest are dropped beyond); None: stop adding (what waits there is kept)."""
        with self._cond:
            self._outbox_max = max_records
        with self._write_lock:
            self._writer.outbox.max_records = max_records

    def acknowledge(self, seq: int) -> None:
        """Every outbox record up to ``seq`` was delivered: delete them (at the next pass)."""
        with self._cond:
            self._outbox_ack = max(seq, self._outbox_ack or seq)

    def outbox_pending(self, after_seq: int, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` committed outbox records numbered above ``after_seq``, oldest
        first, as (seq, JSON object)."""
        with self._snapshot() as conn:
            return outbox.pending(conn, after_seq, limit)

    def last_failure(self) -> tuple[str | None, float | None]:
        """The writer's last error and when it happened (Unix s), without a query."""
        with self._cond:
            return self._last_error, self._last_error_s

    def outbox_stats(self) -> OutboxStats:
        """How many records wait in the outbox and how many were dropped when it was full."""
        with self._cond:
            max_records = self._outbox_max
        with self._snapshot() as conn:
            return outbox.stats(conn, max_records)

    def _record_error(self, message: str) -> None:
        with self._cond:
            self._last_error = message
            self._last_error_s = self._clock()

    # -- reading --------------------------------------------------------------------------

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read connection inside one read transaction (a consistent view)."""
        with self._readers.connection() as conn:
            try:
                conn.execute("BEGIN")
            except sqlite3.Error as e:
                raise StoreError(f"cannot read log {self._path}: {_one_line(e)}") from e
            try:
                yield conn
            except sqlite3.Error as e:
                raise StoreError(f"cannot read log {self._path}: {_one_line(e)}") from e
            finally:
                with suppress(sqlite3.Error):
                    conn.execute("COMMIT")

    def history(
        self, load: str, names: Sequence[str], start_s: float, end_s: float, points: int
    ) -> History:
        """Each of ``names`` in at most ``points`` buckets over [start_s, end_s).

        See ``emsbox.store.history``. Raises ValueError on an unknown load or variable, an
        empty range or ``points`` outside 1…10000.
        """
        with self._snapshot() as conn:
            view = coverage.LogView(conn, self._catalog, self._resolutions)
            return history.query(view, load, names, start_s=start_s, end_s=end_s, points=points)

    def energy(
        self,
        load: str,
        period: Literal["day", "week", "month", "year"],
        start_s: float,
        end_s: float,
        tz: ZoneInfo,
    ) -> list[EnergyPeriod]:
        """Energy per calendar period in ``tz`` from counter differences.

        See ``emsbox.store.energy_periods``. Raises ValueError on an unknown load, period or
        an empty range.
        """
        with self._snapshot() as conn:
            view = coverage.LogView(conn, self._catalog, self._resolutions)
            return energy_periods.query(view, load, period, start_s=start_s, end_s=end_s, tz=tz)

    def loads(self) -> list[str]:
        """Every load that has logged anything, in the order they first appeared."""
        with self._snapshot() as conn:
            return self._catalog.load_names(conn)

    def stats(self) -> StoreStats:
        """Rows and time span per tier, file size, queue, last commit and last error."""
        with self._snapshot() as conn:
            rows = dict(
                conn.execute(
                    "SELECT resolution_s, sum(rows) FROM row_counts GROUP BY resolution_s"
                ).fetchall()
            )
            self._catalog.refresh(conn)
            load_ids = list(self._catalog.load_ids().values())
            tiers = []
            for tier in self._config.tiers:
                r = tier.resolution_s
                spans = [
                    b for i in load_ids if (b := coverage.bounds_of(conn, [r], i)[0]) is not None
                ]
                tiers.append(
                    TierStats(
                        r,
                        tier.retention_h,
                        int(rows.get(r) or 0),
                        float(min(b[0] for b in spans)) if spans else None,
                        float(max(b[1] for b in spans)) if spans else None,
                    )
                )
        size = 0
        for suffix in ("", "-wal"):
            with suppress(OSError):
                size += self._path.with_name(self._path.name + suffix).stat().st_size
        with self._cond:
            return StoreStats(
                tiers,
                size,
                len(self._queue),
                self._last_commit_s,
                self._last_error,
                self._last_error_s,
                self._dropped,
            )
