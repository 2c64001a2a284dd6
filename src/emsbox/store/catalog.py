"""Names to ids: the loads and the row layouts of the log, cached.

Once written, a load's id and a layout's names never change, so every thread may share the
cache; an id or name not in it is looked up again (another connection may have added it).
Only the writer creates entries.
"""

from __future__ import annotations

import sqlite3
import threading

from emsbox.store.row_format import Layout


class Catalog:
    """The ``loads`` and ``layouts`` tables, cached; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._load_ids: dict[str, int] = {}
        self._layouts: dict[int, Layout] = {}
        self._layout_ids: dict[tuple[int, Layout], int] = {}
        self._layouts_of_load: dict[int, set[int]] = {}

    def refresh(self, conn: sqlite3.Connection) -> None:
        """Read every load and layout (cheap: a few rows per load)."""
        loads = conn.execute("SELECT name, id FROM loads").fetchall()
        layouts = conn.execute(
            "SELECT id, load_id, instantaneous, counters FROM layouts"
        ).fetchall()
        # Only ever add: ids never change once written, and a reader refreshing from an older
        # snapshot must not take away what another reader has just seen.
        with self._lock:
            self._load_ids.update({name: int(i) for name, i in loads})
            for layout_id, load_id, inst, counters in layouts:
                self._add_layout(int(layout_id), int(load_id), Layout.from_text(inst, counters))

    def _add_layout(self, layout_id: int, load_id: int, layout: Layout) -> None:
        self._layouts[layout_id] = layout
        self._layout_ids[(load_id, layout)] = layout_id
        self._layouts_of_load.setdefault(load_id, set()).add(layout_id)

    def load_names(self, conn: sqlite3.Connection) -> list[str]:
        """Every load that has logged anything, in the order they first appeared."""
        rows = conn.execute("SELECT name FROM loads ORDER BY id").fetchall()
        return [str(r[0]) for r in rows]

    def load_id(self, conn: sqlite3.Connection, name: str) -> int | None:
        """The id of load ``name``, or None if it never logged anything."""
        with self._lock:
            found = self._load_ids.get(name)
        if found is None:
            row = conn.execute("SELECT id FROM loads WHERE name = ?", (name,)).fetchone()
            if row is None:
                return None
            found = int(row[0])
            with self._lock:
                self._load_ids[name] = found
        return found

    def load_ids(self) -> dict[str, int]:
        """The cached loads by name."""
        with self._lock:
            return dict(self._load_ids)

    def create_load(self, conn: sqlite3.Connection, name: str) -> int:
        """The id of load ``name``, created if new (writer only, inside its transaction)."""
        found = self.load_id(conn, name)
        if found is not None:
            return found
        cursor = conn.execute("INSERT INTO loads (name) VALUES (?)", (name,))
        new_id = int(cursor.lastrowid or 0)
        with self._lock:
            self._load_ids[name] = new_id
        return new_id

    def layout(self, conn: sqlite3.Connection, layout_id: int) -> Layout:
        """The layout of ``layout_id``."""
        with self._lock:
            found = self._layouts.get(layout_id)
        if found is None:
            self.refresh(conn)
            with self._lock:
                found = self._layouts[layout_id]
        return found

    def layouts(self, conn: sqlite3.Connection, layout_ids: set[int]) -> dict[int, Layout]:
        """The layouts of ``layout_ids``."""
        return {i: self.layout(conn, i) for i in layout_ids}

    def all_layouts(self) -> dict[int, Layout]:
        """Every cached layout by id."""
        with self._lock:
            return dict(self._layouts)

    def names_of_load(self, conn: sqlite3.Connection, load_id: int) -> frozenset[str]:
        """Every variable any row of the load was stored with."""
        self.refresh(conn)
        with self._lock:
            ids = self._layouts_of_load.get(load_id, set())
            return frozenset().union(*(self._layouts[i].names for i in ids))

    def layouts_of_load(self, conn: sqlite3.Connection, load_id: int) -> dict[int, Layout]:
        """Every layout any row of the load was stored with, by id."""
        self.refresh(conn)
        with self._lock:
            ids = self._layouts_of_load.get(load_id, set())
            return {i: self._layouts[i] for i in sorted(ids)}

    def layout_id(self, conn: sqlite3.Connection, load_id: int, layout: Layout) -> int:
        """The id of ``layout`` for the load, created if new (writer only, in its transaction)."""
        with self._lock:
            found = self._layout_ids.get((load_id, layout))
        if found is not None:
            return found
        inst, counters = layout.as_text()
        row = conn.execute(
            "SELECT id FROM layouts WHERE load_id = ? AND instantaneous = ? AND counters = ?",
            (load_id, inst, counters),
        ).fetchone()
        if row is None:
            cursor = conn.execute(
                "INSERT INTO layouts (load_id, instantaneous, counters) VALUES (?, ?, ?)",
                (load_id, inst, counters),
            )
            new_id = int(cursor.lastrowid or 0)
        else:
            new_id = int(row[0])
        with self._lock:
            self._add_layout(new_id, load_id, layout)
        return new_id
