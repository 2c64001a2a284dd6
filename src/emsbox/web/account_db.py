"""The SQLite file behind the account store: creation with mode 0600, schema migrations, and
one connection per thread.

sqlite3 connections must not be used by two threads at once, and the web server calls in
from its event loop and a pool of worker threads; so each thread gets its own connection,
kept open. (Opening one per call would work too, but every API request checks a token, and
closing the last connection deletes the -wal and -shm files only to make them again on the
next request: needless writes to a device's flash.) Several processes (the service and the
command line) may use the file at once: writes take SQLite's write lock with BEGIN IMMEDIATE.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import weakref
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

from emsbox.web.account_types import AccountError

# How long to wait for another process's write lock before giving up with an error.
BUSY_TIMEOUT_S = 5.0
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700

# MIGRATIONS[i] takes the schema from version i to i + 1 (PRAGMA user_version). Never edit a
# released step: append a new one, so every existing file can be brought up to date.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # Names compare case-insensitively (NOCASE is exact for the ASCII names allowed), so
        # "Admin" cannot be created beside "admin" to impersonate it.
        "CREATE TABLE users ("
        " name TEXT PRIMARY KEY COLLATE NOCASE,"
        " role TEXT NOT NULL CHECK (role IN ('viewer', 'installer', 'admin')),"
        " password_hash TEXT NOT NULL,"  # Argon2id, encoded: $argon2id$v=19$m=...,t=...,p=...$
        " created_at REAL NOT NULL,"  # seconds since the Unix epoch, as every time here
        " password_changed_at REAL NOT NULL)",
        # owner NULL: made on the command line by someone with access to the data directory.
        "CREATE TABLE tokens ("
        " id TEXT PRIMARY KEY,"
        " name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        " role TEXT NOT NULL CHECK (role IN ('viewer', 'installer', 'admin')),"
        " owner TEXT REFERENCES users (name) ON DELETE CASCADE,"
        " secret_sha256 TEXT NOT NULL,"
        " created_at REAL NOT NULL,"
        " last_used_at REAL)",
        "CREATE INDEX tokens_by_owner ON tokens (owner)",
        "CREATE TABLE sessions ("
        " secret_sha256 TEXT PRIMARY KEY,"
        " user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,"
        " created_at REAL NOT NULL,"
        " expires_at REAL NOT NULL)",
        "CREATE INDEX sessions_by_user ON sessions (user)",
    ),
    (
        # What each user chose in the web app (language, dashboards): one JSON value a key.
        "CREATE TABLE preferences ("
        " user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,"
        " key TEXT NOT NULL,"
        " value TEXT NOT NULL,"
        " PRIMARY KEY (user, key))",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def one_line(error: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(error).split())


def create_private_file(path: Path) -> None:
    """Make sure ``path`` exists with mode 0600, creating it empty (an empty SQLite database).

    Created with the mode in one step, so there is no moment when others could open it. An
    existing file with looser permissions is tightened. SQLite gives the -wal and -shm files
    it creates beside the database the database's own mode.
    """
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=PRIVATE_DIR_MODE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
    else:
        os.close(fd)


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the base type cannot)."""


def _open(path: Path) -> _Connection:
    try:
        conn = sqlite3.connect(
            path,
            # isolation_level=None: transactions are begun and ended explicitly (transaction).
            isolation_level=None,
            timeout=BUSY_TIMEOUT_S,
            # Used only by the thread that opened it; False lets close() end it from another.
            check_same_thread=False,
            factory=_Connection,
        )
    except sqlite3.Error as e:
        raise AccountError(f"cannot open account store {path}: {one_line(e)}") from e
    try:
        # Per connection: SQLite leaves foreign keys off unless asked, every time.
        conn.execute("PRAGMA foreign_keys = ON")
        # FULL: a commit is on disk when it returns. A revoked token or a changed password
        # that comes back after a power cut would be a security hole.
        conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error as e:
        conn.close()
        raise AccountError(f"account store {path}: {one_line(e)}") from e
    return conn


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A new connection to the account file, closed on exit; errors become AccountError."""
    with closing(_open(path)) as conn:
        try:
            yield conn
        except sqlite3.Error as e:
            raise AccountError(f"account store {path}: {one_line(e)}") from e


class ThreadConnections:
    """One connection to the account file per thread, opened on the thread's first use.

    A thread's connection is closed when the thread ends (its thread-local slot is dropped),
    or by ``close``.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._open: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def use(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection; errors become AccountError."""
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                if self._closed:
                    raise AccountError(f"account store {self._path} is closed")
                conn = _open(self._path)
                self._open.add(conn)
            self._local.conn = conn
        try:
            yield conn
        except sqlite3.Error as e:
            raise AccountError(f"account store {self._path}: {one_line(e)}") from e

    def close(self) -> None:
        """Close every thread's connection; later use raises AccountError."""
        with self._lock:
            self._closed = True
            for conn in list(self._open):
                conn.close()
            self._open.clear()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error.

    IMMEDIATE takes the write lock at once, so what the transaction reads (e.g. the number of
    admins) cannot change before it writes.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


@contextmanager
def locked_transaction(
    connections: ThreadConnections, lock: threading.Lock
) -> Iterator[sqlite3.Connection]:
    """``lock`` held, this thread's connection, and a transaction on it (see transaction)."""
    with lock, connections.use() as conn, transaction(conn):
        yield conn


def prepare(path: Path) -> None:
    """Create or open the account file and bring its schema up to SCHEMA_VERSION."""
    create_private_file(path)
    with connect(path) as conn:
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as e:
            raise AccountError(f"{path} is not a usable SQLite database ({one_line(e)})") from e
        if version > SCHEMA_VERSION:
            raise AccountError(
                f"{path} has account schema version {version}; this emsbox knows up to"
                f" {SCHEMA_VERSION} (downgrade refused: restore a backup or update emsbox)"
            )
        # WAL: readers (every API request checks a token) never wait for a writer, and a
        # crash mid-write leaves the previous state intact. Persistent in the file.
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise AccountError(f"{path}: write-ahead logging unavailable ({mode})")
        with transaction(conn):
            # Read again under the write lock: another process may have migrated meanwhile.
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version == 0 and _has_tables(conn):
                raise AccountError(f"{path} is a SQLite database but not an emsbox account store")
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
                # PRAGMA takes no parameters; the value is our own integer.
                conn.execute(f"PRAGMA user_version = {step + 1}")


def _has_tables(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
    return int(row[0]) > 0
