"""The log file: creation, reopening, versioned migrations, refusals of unusable files."""

from __future__ import annotations

import sqlite3

import pytest
from log_readings import T0, open_store, reading

from emsbox.store import schema
from emsbox.store.log import StoreError


def one_line(excinfo: pytest.ExceptionInfo[StoreError]) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


def test_new_file_has_the_schema_version_wal_and_every_tier_table(tmp_path):
    path = tmp_path / "log.sqlite3"
    open_store(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION >= 1
    assert conn.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA page_size").fetchone()[0] == schema.PAGE_SIZE
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"loads", "layouts", "row_counts"} <= names
    for r in (1, 60, 900, 3600):
        assert f"log_{r}s" in names and f"log_{r}s_rows" in names
    conn.close()


def test_reopening_keeps_the_data_and_the_version(tmp_path):
    path = tmp_path / "log.sqlite3"
    store = open_store(path)
    store.submit(reading(T0 + 1, {"p_sys": 5.0}))
    store.close()
    store = open_store(path)
    assert store.loads() == ["main"]
    assert store.stats().tiers[0].rows == 1
    store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    conn.close()


def test_migration_steps_run_once_in_order_and_record_the_version(tmp_path, monkeypatch):
    path = tmp_path / "log.sqlite3"
    open_store(path).close()
    ran = []

    def add_notes(conn: sqlite3.Connection) -> None:
        ran.append(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute("CREATE TABLE notes (text TEXT)")

    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, add_notes))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", len(schema.MIGRATIONS))
    open_store(path).close()
    open_store(path).close()
    before = len(schema.MIGRATIONS) - 1
    assert ran == [before]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == before + 1
    assert conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 0
    conn.close()


def test_a_failed_migration_step_leaves_the_previous_version(tmp_path, monkeypatch):
    path = tmp_path / "log.sqlite3"
    open_store(path).close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x)")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", len(schema.MIGRATIONS))
    with pytest.raises(StoreError) as excinfo:
        open_store(path)
    assert "disk I/O error" in one_line(excinfo)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS) - 1
    assert "half" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()


def test_a_log_of_version_1_gains_the_outbox_and_keeps_its_rows(tmp_path):
    path = tmp_path / "log.sqlite3"
    store = open_store(path)
    store.submit(reading(T0 + 1, {"p_sys": 5.0}))
    store.close()
    # The file as version 1 left it: no outbox.
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE outbox")
    conn.execute("DROP TABLE outbox_state")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    store = open_store(path)
    assert store.stats().tiers[0].rows == 1
    assert store.outbox_stats().records == 0
    store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION == 2
    conn.close()


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "log.sqlite3"
    open_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError) as excinfo:
        open_store(path)
    message = one_line(excinfo)
    assert "version 99" in message and "newer" in message


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "log.sqlite3"
    junk = b"this is not a database, just some text " * 200
    path.write_bytes(junk)
    with pytest.raises(StoreError) as excinfo:
        open_store(path)
    assert "not a SQLite database" in one_line(excinfo)
    assert path.read_bytes() == junk


def test_another_programs_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (name TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as excinfo:
        open_store(path)
    assert "not an emsbox log" in one_line(excinfo)
    assert path.read_bytes() == before


def test_an_unusable_place_is_refused_with_one_line(tmp_path):
    with pytest.raises(StoreError) as excinfo:
        open_store(tmp_path / "missing" / "log.sqlite3")
    assert "cannot open log" in one_line(excinfo) or "cannot use log" in one_line(excinfo)
    with pytest.raises(StoreError) as excinfo:
        open_store(tmp_path)
    assert "directory" in one_line(excinfo)
