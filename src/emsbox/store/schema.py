"""The log file's tables and their versioned migrations.

The schema version is ``PRAGMA user_version``: 0 for a new file, then the number of migration
steps applied. ``MIGRATIONS[i]`` brings a file from version ``i`` to ``i + 1``; each step runs in
its own transaction together with the version bump, so a crash mid-migration leaves the file at
the previous version. ``PRAGMA application_id`` marks the file as an emsbox log, so that another
program's SQLite database is refused rather than written into.

Tier tables are not part of the numbered steps: their names follow the configured resolutions
(``log_60s``), which may change between runs, so they are created on open with the layout of the
current schema version (``TIER_TABLE``). A migration that changes the row format must rewrite
every ``log_%s`` table it finds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from emsbox.store import outbox

# "EMSL" in ASCII: marks the file as an emsbox log.
APPLICATION_ID = 0x454D534C
# Rows are large (hundreds of bytes); 8 KiB pages hold nine 3P4W rows with little waste.
PAGE_SIZE = 8192
BUSY_TIMEOUT_S = 5.0

# load_bucket packs the primary key (load_id, bucket_start) into SQLite's integer row key:
# load_id * 2**40 + bucket_start. The table is then clustered by load and time with no separate
# index: a load's rows lie together in order, and appending is cheap.
BUCKET_BITS = 40
BUCKET_LIMIT = 1 << BUCKET_BITS  # bucket starts up to the year 36812


class SchemaError(Exception):
    """The file cannot be used as a log; the message is one line."""


def pack_key(load_id: int, bucket_s: int) -> int:
    """The row key of ``load_id``'s bucket starting at ``bucket_s``."""
    return (load_id << BUCKET_BITS) | bucket_s


def key_range(load_id: int, start_s: int, end_s: int) -> tuple[int, int]:
    """Keys [lo, hi) of ``load_id``'s buckets starting in [start_s, end_s), clamped to 0…2**40."""
    base = load_id << BUCKET_BITS
    lo = min(max(start_s, 0), BUCKET_LIMIT)
    hi = min(max(end_s, 0), BUCKET_LIMIT)
    return base + lo, base + max(lo, hi)


def tier_table(resolution_s: int) -> str:
    """Name of the table of the tier of ``resolution_s``."""
    return f"log_{int(resolution_s)}s"


def _create_v1(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE loads (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
    # A layout lists a load's variables in the order their values lie in a row's blob; a row
    # refers to its layout, so a load's variables (its wiring) may change without rewriting
    # older rows. Names are comma-separated.
    conn.execute(
        "CREATE TABLE layouts ("
        " id INTEGER PRIMARY KEY,"
        " load_id INTEGER NOT NULL REFERENCES loads (id),"
        " instantaneous TEXT NOT NULL,"
        " counters TEXT NOT NULL,"
        " UNIQUE (load_id, instantaneous, counters))"
    )
    # Rows per tier and load, kept in step by the writer in the same transactions as the rows:
    # COUNT(*) would read every page of a multi-gigabyte table.
    conn.execute(
        "CREATE TABLE row_counts ("
        " resolution_s INTEGER NOT NULL,"
        " load_id INTEGER NOT NULL,"
        " rows INTEGER NOT NULL,"
        " PRIMARY KEY (resolution_s, load_id)) WITHOUT ROWID"
    )


# MIGRATIONS[i] takes a file from version i to i + 1. Append; never edit a released step.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _create_v1,
    outbox.create_tables,
)
SCHEMA_VERSION = len(MIGRATIONS)

# The tier table of the current schema version (see the module docstring).
TIER_TABLE = (
    "CREATE TABLE IF NOT EXISTS {table} ("
    " load_bucket INTEGER PRIMARY KEY,"  # load_id * 2**40 + bucket start (s since the epoch)
    " layout_id INTEGER NOT NULL,"
    " covered_us INTEGER NOT NULL,"  # measured time the values cover
    " data BLOB NOT NULL)"
)
# The same rows with the key unpacked, for people reading the file with the sqlite3 shell.
TIER_VIEW = (
    "CREATE VIEW IF NOT EXISTS {table}_rows AS SELECT"
    f" load_bucket >> {BUCKET_BITS} AS load_id,"
    f" load_bucket & {BUCKET_LIMIT - 1} AS bucket_s,"
    " layout_id, covered_us, length(data) AS data_bytes FROM {table}"
)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def connect(path: Path, *, query_only: bool = False) -> sqlite3.Connection:
    """A connection to the log that may be handed between threads (one user at a time)."""
    # isolation_level=None: callers begin and end transactions themselves.
    conn = sqlite3.connect(
        path, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False
    )
    if query_only:
        conn.execute("PRAGMA query_only = ON")
    return conn


def open_log(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the log at ``path`` and bring its schema up to date.

    Raises SchemaError, leaving a foreign file untouched, if the file is not a SQLite database,
    is another program's database, has a newer schema than this program knows, or cannot be
    written.
    """
    if path.is_dir():
        raise SchemaError(f"cannot open log {path}: it is a directory")
    try:
        conn = connect(path)
    except sqlite3.Error as e:
        raise SchemaError(f"cannot open log {path}: {_one_line(e)}") from e
    try:
        _prepare(conn, path)
    except sqlite3.Error as e:
        conn.close()
        raise SchemaError(f"cannot use log {path}: {_one_line(e)}") from e
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        has_tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
    except sqlite3.DatabaseError as e:
        if getattr(e, "sqlite_errorname", "") in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            raise SchemaError(f"{path} is not a SQLite database ({_one_line(e)})") from e
        raise
    if app_id not in (0, APPLICATION_ID) or (app_id == 0 and has_tables):
        raise SchemaError(f"{path} is a SQLite database but not an emsbox log")
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"{path} has log schema version {version}, newer than the version {SCHEMA_VERSION}"
            " this emsbox knows: upgrade emsbox or use another data directory"
        )
    if not has_tables:
        # Only possible before the first table exists; ignored on an existing file.
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    # WAL: readers (web requests) never block the writer and always see whole commits.
    mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
    if mode != "wal":
        raise SchemaError(f"{path}: write-ahead logging unavailable ({mode})")
    # NORMAL: a power cut may forget the last commits but never corrupts the file (shared
    # PITFALLS.md). The log is not billing data; the counters store uses FULL.
    conn.execute("PRAGMA synchronous = NORMAL")
    for step in range(version, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[step](conn)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {step + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def ensure_tier_tables(conn: sqlite3.Connection, resolutions: list[int]) -> None:
    """Create the tables (and inspection views) of the configured tiers that do not exist."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for resolution_s in resolutions:
            table = tier_table(resolution_s)
            conn.execute(TIER_TABLE.format(table=table))
            conn.execute(TIER_VIEW.format(table=table))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
