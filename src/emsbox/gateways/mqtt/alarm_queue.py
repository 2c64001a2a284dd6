"""Alarm events waiting for the broker, kept on disk until it has acknowledged them.

An event is written here when the alarm happens and deleted only when the broker's PUBACK for
it comes back, so neither a connection lost with events in flight nor a restart while the
broker is away loses one (an event may then arrive twice: MQTT QoS 1 is at least once). The
newest ``max_events`` are kept; older ones are dropped and counted.

The file is opened when first needed (never while MQTT is off). A file that is not a database
or is damaged is set aside (with its journal) and begun anew; any other failure of the file
(a full disk, no permission, an I/O error) leaves the events of this run in memory, so alarms
still go out, and says so once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

ALARM_QUEUE_FILE = "mqtt-alarms.sqlite3"
_DAMAGED = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}


class AlarmQueue:
    """The waiting events in ``path`` (SQLite), oldest first; thread-safe."""

    def __init__(self, path: Path, max_events: int) -> None:
        self._path = path
        self._max = max_events
        self._lock = threading.Lock()
        self.added = threading.Event()  # set by add(): something may wait to be sent
        self.dropped = 0
        self._conn: sqlite3.Connection | None = None
        # Once the file fails: the events of this run, by id (ids go on from the file's).
        self._memory: dict[int, str] | None = None
        self._last_id = 0

    def add(self, event: Mapping[str, object]) -> None:
        """Keep ``event`` (JSON without NaN) until ``remove``; drop the oldest beyond the cap."""
        body = json.dumps(dict(event), allow_nan=False)
        with self._lock:
            gone = self._add(body)
            self.dropped += gone
        if gone:
            log.warning("mqtt: %d alarm events dropped, more than %d waiting", gone, self._max)
        self.added.set()

    def pending(self, after_id: int, limit: int) -> list[tuple[int, dict[str, object]]]:
        """Up to ``limit`` waiting events after ``after_id``, oldest first."""
        with self._lock:
            rows = self._pending(after_id, limit)
            if rows:
                self._last_id = max(self._last_id, rows[-1][0])
        return [(i, json.loads(body)) for i, body in rows]

    def remove(self, ids: Iterable[int]) -> None:
        """Forget the events the broker has acknowledged."""
        wanted = list(ids)
        with self._lock:
            db = self._db()
            if db is not None:
                try:
                    db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in wanted])
                    return
                except sqlite3.Error as exc:
                    self._fail(exc)
            for i in wanted:
                self._memory_events().pop(i, None)

    def count(self) -> int:
        """Events waiting."""
        with self._lock:
            db = self._db()
            if db is not None:
                try:
                    return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
                except sqlite3.Error as exc:
                    self._fail(exc)
            return len(self._memory_events())

    def close(self) -> None:
        """Close the file (it is opened again when needed)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- under the lock ----------------------------------------------------------------------

    def _add(self, body: str) -> int:
        """Keep ``body``; how many old events were dropped for it."""
        db = self._db()
        if db is not None:
            try:
                db.execute("BEGIN IMMEDIATE")  # one transaction: the event and the trimming
                try:
                    cursor = db.execute("INSERT INTO events (body) VALUES (?)", (body,))
                    newest = int(cursor.lastrowid or 0)
                    trim = "DELETE FROM events WHERE id <= ?"
                    gone = db.execute(trim, (newest - self._max,)).rowcount
                    db.execute("COMMIT")
                except sqlite3.Error:
                    db.execute("ROLLBACK")
                    raise
                self._last_id = max(self._last_id, newest)
                return max(0, gone)
            except sqlite3.Error as exc:
                self._fail(exc)
        memory = self._memory_events()
        self._last_id += 1
        memory[self._last_id] = body
        gone = 0
        while len(memory) > self._max:
            memory.pop(next(iter(memory)))
            gone += 1
        return gone

    def _pending(self, after_id: int, limit: int) -> list[tuple[int, str]]:
        db = self._db()
        if db is not None:
            try:
                rows = db.execute(
                    "SELECT id, body FROM events WHERE id > ? ORDER BY id LIMIT ?",
                    (after_id, limit),
                ).fetchall()
                return [(int(r[0]), str(r[1])) for r in rows]
            except sqlite3.Error as exc:
                self._fail(exc)
        return [(i, b) for i, b in self._memory_events().items() if i > after_id][:limit]

    def _db(self) -> sqlite3.Connection | None:
        """The open file, opened (or set aside and begun anew) if need be; None once it
        failed."""
        if self._memory is not None:
            return None
        if self._conn is None:
            try:
                self._conn = _open(self._path)
            except sqlite3.Error as exc:
                if exc.sqlite_errorname not in _DAMAGED:
                    self._fail(exc)
                    return None
                try:
                    aside = _set_aside(self._path)
                    log.error("mqtt: alarm queue damaged (%s), set aside as %s", exc, aside)
                    self._conn = _open(self._path)
                except (sqlite3.Error, OSError) as again:
                    self._fail(again)
                    return None
            except OSError as exc:
                self._fail(exc)
                return None
            try:
                row = self._conn.execute("SELECT max(id) FROM events").fetchone()
            except sqlite3.Error as exc:
                self._fail(exc)
                return None
            self._last_id = max(self._last_id, int(row[0] or 0))
        return self._conn

    def _fail(self, exc: Exception) -> None:
        """The file cannot be used: from now on this run's events wait in memory."""
        log.error(
            "mqtt: alarm queue %s cannot be used (%s); alarm events wait in memory until "
            "emsbox restarts",
            self._path,
            exc,
        )
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        self._memory = {}

    def _memory_events(self) -> dict[int, str]:
        if self._memory is None:
            self._memory = {}
        return self._memory


def _open(path: Path) -> sqlite3.Connection:
    """The queue's database, its table made if new; sqlite3.Error if it cannot be used."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " body TEXT NOT NULL)"
        )
        conn.execute("SELECT count(*) FROM events").fetchone()
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def _set_aside(path: Path) -> Path:
    """Move a damaged database and its journal files to a name of their own; the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    path.replace(aside)
    for extra in ("-wal", "-shm"):
        journal = path.with_name(path.name + extra)
        if journal.exists():
            journal.replace(aside.with_name(aside.name + extra))
    return aside
