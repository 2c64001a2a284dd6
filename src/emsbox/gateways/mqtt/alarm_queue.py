"""Alarm events waiting for the broker, kept on disk until it has acknowledged them.

An event is written here when the alarm happens and deleted only when the broker's PUBACK for
it comes back, so neither a connection lost with events in flight nor a restart while the
broker is away loses one (an event may then arrive twice: MQTT QoS 1 is at least once). The
newest ``max_events`` are kept; older ones are dropped and counted.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

ALARM_QUEUE_FILE = "mqtt-alarms.sqlite3"


class AlarmQueue:
    """The waiting events in ``path`` (SQLite), oldest first; thread-safe."""

    def __init__(self, path: Path, max_events: int) -> None:
        self._max = max_events
        self._lock = threading.Lock()
        self.added = threading.Event()  # set by add(): something may wait to be sent
        self.dropped = 0
        try:
            self._conn = _open(path)
        except sqlite3.DatabaseError as exc:
            # A damaged file must not stop the service: set aside (for a look) and begun anew.
            aside = path.with_name(f"{path.name}.damaged")
            log.error("mqtt: alarm queue %s unreadable (%s), set aside as %s", path, exc, aside)
            path.replace(aside)
            for extra in ("-wal", "-shm"):
                path.with_name(path.name + extra).unlink(missing_ok=True)
            self._conn = _open(path)

    def add(self, event: Mapping[str, object]) -> None:
        """Keep ``event`` (JSON without NaN) until ``remove``; drop the oldest beyond the cap."""
        body = json.dumps(dict(event), allow_nan=False)
        with self._lock:
            newest = self._conn.execute("INSERT INTO events (body) VALUES (?)", (body,)).lastrowid
            gone = self._conn.execute(
                "DELETE FROM events WHERE id <= ?", (int(newest or 0) - self._max,)
            ).rowcount
            self.dropped += max(0, gone)
        if gone > 0:
            log.warning("mqtt: %d alarm events dropped, more than %d waiting", gone, self._max)
        self.added.set()

    def pending(self, after_id: int, limit: int) -> list[tuple[int, dict[str, object]]]:
        """Up to ``limit`` waiting events after ``after_id``, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, body FROM events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            ).fetchall()
        return [(int(r[0]), json.loads(r[1])) for r in rows]

    def remove(self, ids: Iterable[int]) -> None:
        """Forget the events the broker has acknowledged."""
        with self._lock:
            self._conn.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in ids])

    def count(self) -> int:
        """Events waiting."""
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._conn.close()


def _open(path: Path) -> sqlite3.Connection:
    """The queue's database, its table made if new; sqlite3.DatabaseError if damaged."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " body TEXT NOT NULL)"
        )
        conn.execute("SELECT count(*) FROM events").fetchone()
    except sqlite3.DatabaseError:
        conn.close()
        raise
    return conn
