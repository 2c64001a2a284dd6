"""The alarm history: every raise, clear and acknowledgement, in its own SQLite file.

The controller's thread writes; the web layer reads through its own connections. The newest
``KEEP_EVENTS`` events are kept, and beyond them each alarm's newest event and newest raise.
Its events restore an alarm's state at the next start, so a latched alarm is still there after
a restart until someone acknowledges it.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

KEEP_EVENTS = 10_000


@dataclass(frozen=True)
class AlarmEvent:
    """One change of an alarm's state."""

    id: int
    time_s: float
    alarm: str
    event: str  # raised, cleared, acknowledged
    value: float | None
    by: str | None  # who acknowledged


class AlarmLog:
    """The history in ``path``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._conn = self._connect()
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " time_s REAL NOT NULL, alarm TEXT NOT NULL, event TEXT NOT NULL,"
            " value REAL, by TEXT)"
        )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)

    def add(
        self, time_s: float, alarm: str, event: str, value: float | None, by: str | None
    ) -> None:
        """Record one event (and forget the oldest beyond KEEP_EVENTS)."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO events (time_s, alarm, event, value, by) VALUES (?, ?, ?, ?, ?)",
                (time_s, alarm, event, value, by),
            )
            newest = int(cur.lastrowid or 0)
            if newest % 100 == 0:
                # Each alarm's newest event and newest raise stay: a restart restores its
                # state from them (a latched alarm must not be forgotten because others were
                # busy).
                self._conn.execute(
                    "DELETE FROM events WHERE id <= ?"
                    " AND id NOT IN (SELECT max(id) FROM events GROUP BY alarm)"
                    " AND id NOT IN (SELECT max(id) FROM events WHERE event = 'raised'"
                    " GROUP BY alarm)",
                    (newest - KEEP_EVENTS,),
                )

    def events(self, limit: int = 100, alarm: str | None = None) -> list[AlarmEvent]:
        """The newest events first, of every alarm or of one."""
        sql = "SELECT id, time_s, alarm, event, value, by FROM events"
        args: tuple[object, ...] = ()
        if alarm is not None:
            sql += " WHERE alarm = ?"
            args = (alarm,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [AlarmEvent(int(r[0]), float(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def last_states(self) -> dict[str, tuple[bool, bool]]:
        """Each alarm's (active, acknowledged) after its events so far."""
        with self._lock:
            rows = self._conn.execute("SELECT alarm, event FROM events ORDER BY id").fetchall()
        states: dict[str, tuple[bool, bool]] = {}
        for alarm, event in rows:
            active, acked = states.get(alarm, (False, True))
            if event == "raised":
                active, acked = True, False
            elif event == "cleared":
                active = False
            elif event == "acknowledged":
                acked = True
            states[alarm] = (active, acked)
        return states

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._conn.close()
