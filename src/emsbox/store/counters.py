"""Durable counter state: one SQLite file holding the counters of every load, saved atomically.

The store knows nothing of how counters are computed (the import contracts keep it apart from
``emsbox.metering``): it keeps any state that has a JSON form and a sequence number that only
grows, and turns stored text back into states with the decoder it is given, normally
``emsbox.metering.energy.CounterState.from_json``.

Concurrency: a store is used from one thread; sqlite3 refuses a connection's use from another
thread, so a mistake fails loudly instead of racing. Several processes may open the same file:
every save takes the write lock before reading the stored sequences, so the check against
rewinding cannot interleave with another process's save.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Generic, Protocol, TypeVar

SCHEMA_VERSION = 1
DEFAULT_SAVE_INTERVAL_S = 1.0
# How long to wait for another process's write lock before giving up with an error.
_BUSY_TIMEOUT_S = 5.0

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # saved_at: seconds since the Unix epoch; state: the JSON text of the state.
    "CREATE TABLE counters ("
    " load TEXT PRIMARY KEY, sequence INTEGER NOT NULL, saved_at REAL NOT NULL,"
    " state TEXT NOT NULL)",
)
_UPSERT = (
    "INSERT INTO counters (load, sequence, saved_at, state) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (load) DO UPDATE SET"
    " sequence = excluded.sequence, saved_at = excluded.saved_at, state = excluded.state"
)


class CounterStoreError(Exception):
    """The counter store cannot be used, or a save would lose data; the message is one line."""


class SavableState(Protocol):
    """What the store needs of a state: its JSON text and a sequence number that only grows."""

    @property
    def sequence(self) -> int:
        """Number of changes the state has seen."""
        ...

    def to_json(self) -> str:
        """The state as JSON text."""
        ...


S = TypeVar("S", bound=SavableState)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


class CounterStore(Generic[S]):
    """The saved counter states of every load, in one SQLite file.

    ``decode`` turns stored JSON text back into a state and raises on anything invalid.
    ``clock`` gives the wall-clock time recorded with each save.
    """

    def __init__(
        self, path: Path, decode: Callable[[str], S], clock: Callable[[], float] = time.time
    ) -> None:
        self._path = path
        self._decode = decode
        self._clock = clock
        try:
            # isolation_level=None: this class begins and ends every transaction itself.
            self._conn = sqlite3.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT_S)
        except sqlite3.Error as e:
            raise CounterStoreError(f"cannot open counter store {path}: {_one_line(e)}") from e
        try:
            self._prepare()
        except BaseException:
            self._conn.close()
            raise

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    def save(self, states: Mapping[str, S]) -> None:
        """Write the state of every load in ``states`` in one transaction: all or none.

        Raises CounterStoreError, saving nothing, if a state's sequence is lower than the one
        stored for its load: that would rewind the counters (e.g. a second process that
        started from an older state), and counters never run backwards.
        """
        rows = [(load, state.sequence, state.to_json()) for load, state in states.items()]
        saved_at = self._clock()
        with self._transaction():
            for load, sequence, text in rows:
                stored = self._conn.execute(
                    "SELECT sequence FROM counters WHERE load = ?", (load,)
                ).fetchone()
                if stored is not None and sequence < stored[0]:
                    raise CounterStoreError(
                        f"refusing to rewind the counters of load {load!r} from sequence"
                        f" {stored[0]} to {sequence}"
                    )
                self._conn.execute(_UPSERT, (load, sequence, saved_at, text))

    def load(self, load: str) -> S | None:
        """The saved state of ``load``, or None if none was ever saved."""
        row = self._fetch("SELECT load, sequence, state FROM counters WHERE load = ?", (load,))
        return self._decoded(*row[0]) if row else None

    def load_all(self) -> dict[str, S]:
        """The saved state of every load, by load name."""
        rows = self._fetch("SELECT load, sequence, state FROM counters ORDER BY load", ())
        return {row[0]: self._decoded(*row) for row in rows}

    def close(self) -> None:
        """Close the file; every completed save is already durable."""
        self._conn.close()

    def __enter__(self) -> CounterStore[S]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _prepare(self) -> None:
        """Check an existing file is a counter store, switch on durability, create the schema."""
        # Checked before anything is written, so that a foreign database is left untouched.
        tables = self._tables()
        if tables:
            self._check_schema(tables)
        # WAL: a save appends to the log and never rewrites the main file in place, so a crash
        # mid-save leaves the previous state intact and readers never see half a save.
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise CounterStoreError(f"{self._path}: write-ahead logging unavailable ({mode})")
        # FULL: every commit is fsynced before save() returns. Counters are billing data, like
        # a legal-for-trade meter's register: a save that returned must survive a power cut.
        # (NORMAL in WAL mode stays consistent but may forget the last commits on power loss.)
        self._conn.execute("PRAGMA synchronous=FULL")
        if not tables:
            with self._transaction():
                # Another process may have created the schema since the check above.
                if not self._tables():
                    self._create_schema()

    def _tables(self) -> set[str]:
        try:
            rows = self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return {row[0] for row in rows}
        except sqlite3.DatabaseError as e:
            raise CounterStoreError(
                f"{self._path} is not a usable SQLite database ({_one_line(e)})"
            ) from e

    def _create_schema(self) -> None:
        for statement in _SCHEMA:
            self._conn.execute(statement)
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )

    def _check_schema(self, tables: set[str]) -> None:
        if not {"meta", "counters"} <= tables:
            raise CounterStoreError(
                f"{self._path} is a SQLite database but not an emsbox counter store"
            )
        row = self._fetch("SELECT value FROM meta WHERE key = 'schema_version'", ())
        version = row[0][0] if row else None
        if version != str(SCHEMA_VERSION):
            raise CounterStoreError(
                f"{self._path} has counter store schema version {version}; this emsbox reads"
                f" version {SCHEMA_VERSION}"
            )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error.

        IMMEDIATE takes the write lock at once, so what a transaction reads cannot change
        before it writes.
        """
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            yield
            self._conn.execute("COMMIT")
        except BaseException as e:
            if self._conn.in_transaction:
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise CounterStoreError(f"{self._path}: {_one_line(e)}") from e
            raise

    def _fetch(self, sql: str, args: tuple[str, ...]) -> list[tuple[str, int, str]]:
        try:
            rows: list[tuple[str, int, str]] = self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise CounterStoreError(f"{self._path}: {_one_line(e)}") from e
        return rows

    def _decoded(self, load: str, sequence: int, text: str) -> S:
        try:
            state = self._decode(text)
        # The decoder's own validation errors, whatever their type, mean a damaged state.
        except Exception as e:
            raise CounterStoreError(
                f"{self._path}: the saved state of load {load!r} is unreadable: {_one_line(e)}"
            ) from e
        if state.sequence != sequence:
            raise CounterStoreError(
                f"{self._path}: the saved state of load {load!r} has sequence"
                f" {state.sequence} but is filed under {sequence}"
            )
        return state


class CounterSaver(Generic[S]):
    """Saves counter states at most every ``interval_s``, so a crash loses at most that much.

    The acquisition loop calls ``maybe_save`` after every batch with its monotonic clock, and
    ``flush`` when it stops.
    """

    def __init__(self, store: CounterStore[S], interval_s: float = DEFAULT_SAVE_INTERVAL_S) -> None:
        if not interval_s > 0.0:
            raise ValueError(f"save interval must be > 0 s, got {interval_s}")
        self._store = store
        self._interval_s = interval_s
        self._last_save_s: float | None = None

    @property
    def interval_s(self) -> float:
        """Least time between two saves by ``maybe_save``."""
        return self._interval_s

    def due(self, now_s: float) -> bool:
        """Whether ``maybe_save`` would save at ``now_s`` (to skip building states until then)."""
        return self._last_save_s is None or now_s - self._last_save_s >= self._interval_s

    def maybe_save(self, states: Mapping[str, S], now_s: float) -> bool:
        """Save if none was made yet or ``interval_s`` has passed since the last; True if saved.

        ``now_s`` is a monotonic time in seconds. A failed save raises CounterStoreError and
        the next call tries again.
        """
        if not self.due(now_s):
            return False
        self._store.save(states)
        self._last_save_s = now_s
        return True

    def flush(self, states: Mapping[str, S], now_s: float | None = None) -> None:
        """Save now, whatever the time (when stopping); ``now_s`` restarts the interval."""
        self._store.save(states)
        if now_s is not None:
            self._last_save_s = now_s
