"""The outbox: logged records waiting to be forwarded, on disk in the log file.

Each row of the logging tier (the tier of ``logging_interval_s``) written while the outbox is
on is also put in the ``outbox`` table, in the same transaction, as one JSON record with a
sequence number. ``seq`` is an AUTOINCREMENT key: it only ever grows, across restarts and
after the table was emptied, so a receiver can drop duplicates by it. A forwarder reads
records after the last one it sent and acknowledges them once delivered; acknowledged records
are deleted by the writer's next pass. Records are only deleted from the oldest end, so the
rows always hold one run of consecutive numbers and their count is ``newest − oldest + 1``.

The outbox holds at most ``max_records``; beyond that the oldest are dropped and counted (the
count is kept in the file), which the forwarder reports as an alarm.

A bucket written again (late data merged after a restart, a roll-up redone) is put in the
outbox again under a new number: the later record of the same ``load`` and ``ts`` replaces
the earlier one.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from emsbox import variables
from emsbox.store.row_format import RowBlock

STATE_NAMES = frozenset(v.name for v in variables.STATE)


@dataclass(frozen=True)
class OutboxStats:
    """How many records wait, the numbers of the oldest and newest, and how many were
    dropped because the outbox was full (since the file was made)."""

    records: int
    oldest_seq: int | None
    newest_seq: int | None
    dropped: int
    max_records: int | None


def create_tables(conn: sqlite3.Connection) -> None:
    """The outbox's tables (schema step 2)."""
    conn.execute(
        "CREATE TABLE outbox ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " load TEXT NOT NULL,"
        " bucket_s INTEGER NOT NULL,"
        " record TEXT NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE outbox_state (id INTEGER PRIMARY KEY CHECK (id = 1),"
        " dropped INTEGER NOT NULL)"
    )
    conn.execute("INSERT INTO outbox_state (id, dropped) VALUES (1, 0)")


def _number(value: float, single: bool) -> float | None:
    """A value as JSON holds it: None when missing, float32 values at their own precision."""
    if not math.isfinite(value):
        return None
    # Measured values are stored as float32: print the shortest decimal that is that float32
    # (230.1, not 230.10000610351562). Counters are float64 and keep every digit.
    return float(str(np.float32(value))) if single else float(value)


def record_json(load: str, resolution_s: int, block: RowBlock, i: int) -> str:
    """Row ``i`` of ``block`` as one flat JSON object (see docs/mqtt.md "Logged records").

    Averages under the variable's name, extremes with ``_min``/``_max`` (not of the state
    variables), counters at the end of the interval; ``ts`` and ``time`` are the start of the
    interval. Missing values are left out.
    """
    start = int(block.bucket_s[i])
    record: dict[str, object] = {
        "load": load,
        "ts": start,
        "time": datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "interval_s": resolution_s,
        "covered_s": round(float(block.covered_s[i]), 3),
    }
    layout = block.layout
    for j, name in enumerate(layout.instantaneous):
        # The state variables (tariff, partial_running) as their time-weighted mean only.
        extremes = name not in STATE_NAMES
        stats = ("", block.avg), ("_min", block.minimum), ("_max", block.maximum)
        for suffix, matrix in stats if extremes else stats[:1]:
            value = _number(float(matrix[i, j]), single=True)
            if value is not None:
                record[name + suffix] = value
    for j, name in enumerate(layout.counters):
        value = _number(float(block.counters[i, j]), single=False)
        if value is not None:
            record[name] = value
    return json.dumps(record, separators=(",", ":"), allow_nan=False)


class OutboxWriter:
    """The writer's side of the outbox (used on the writer thread, inside its transactions)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.max_records: int | None = None  # None: the outbox is off
        self._oldest, self._newest = _bounds(conn)
        self.acknowledged: int | None = None  # every record up to this one was delivered

    def add(self, conn: sqlite3.Connection, load: str, resolution_s: int, block: RowBlock) -> None:
        """Put every row of ``block`` in the outbox, when it is on."""
        if self.max_records is None or not len(block):
            return
        conn.executemany(
            "INSERT INTO outbox (load, bucket_s, record) VALUES (?, ?, ?)",
            [
                (load, int(block.bucket_s[i]), record_json(load, resolution_s, block, i))
                for i in range(len(block))
            ],
        )

    def finish(self, conn: sqlite3.Connection) -> int:
        """At the end of a pass: delete what was acknowledged and what is beyond the limit.

        Returns how many records this pass dropped for want of room.
        """
        if self.acknowledged is not None:
            conn.execute("DELETE FROM outbox WHERE seq <= ?", (self.acknowledged,))
        self._oldest, self._newest = _bounds(conn)
        dropped = 0
        count = self.count()
        if self.max_records is not None and count > self.max_records:
            assert self._oldest is not None
            dropped = count - self.max_records
            conn.execute("DELETE FROM outbox WHERE seq < ?", (self._oldest + dropped,))
            conn.execute("UPDATE outbox_state SET dropped = dropped + ? WHERE id = 1", (dropped,))
            self._oldest += dropped
        return dropped

    def reload(self, conn: sqlite3.Connection) -> None:
        """After a rolled-back pass: the bounds as committed."""
        self._oldest, self._newest = _bounds(conn)

    @property
    def newest(self) -> int | None:
        """The number of the newest record (as of the last pass)."""
        return self._newest

    def count(self) -> int:
        """Records in the outbox."""
        if self._oldest is None or self._newest is None:
            return 0
        return self._newest - self._oldest + 1


def _bounds(conn: sqlite3.Connection) -> tuple[int | None, int | None]:
    row = conn.execute("SELECT min(seq), max(seq) FROM outbox").fetchone()
    return (None, None) if row[0] is None else (int(row[0]), int(row[1]))


def pending(conn: sqlite3.Connection, after_seq: int, limit: int) -> list[tuple[int, str]]:
    """Up to ``limit`` records numbered above ``after_seq``, oldest first: (seq, JSON)."""
    rows = conn.execute(
        "SELECT seq, record FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
    ).fetchall()
    return [(int(seq), str(record)) for seq, record in rows]


def stats(conn: sqlite3.Connection, max_records: int | None) -> OutboxStats:
    """The outbox's state as committed."""
    oldest, newest = _bounds(conn)
    dropped = int(conn.execute("SELECT dropped FROM outbox_state WHERE id = 1").fetchone()[0])
    records = 0 if oldest is None or newest is None else newest - oldest + 1
    return OutboxStats(records, oldest, newest, dropped, max_records)
