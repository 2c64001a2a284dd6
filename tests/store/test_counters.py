"""The counter store: round trips, atomic saves, refusals, and durability under kill -9."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from emsbox.metering.energy import CounterState, EnergyCounters
from emsbox.metering.readings import WindowBatch
from emsbox.samples import Wiring
from emsbox.store.counters import (
    DEFAULT_SAVE_INTERVAL_S,
    SCHEMA_VERSION,
    CounterSaver,
    CounterStore,
    CounterStoreError,
)


def open_store(path: Path, clock=time.time) -> CounterStore[CounterState]:
    return CounterStore(path, CounterState.from_json, clock=clock)


def counters_after(wiring: Wiring, batches: int, p: float = 2300.0) -> EnergyCounters:
    """Counters of a 1P2W or 3P4W load after ``batches`` batches of 5 windows."""
    counters = EnergyCounters(wiring, 4.6)
    phases = ("l1",) if wiring is Wiring.SINGLE_PHASE else ("l1", "l2", "l3")
    x = np.full(5, p)
    values = {"p_sys": x, "q_sys": x / 4, "s_sys": x * 1.1}
    for ph in phases:
        values |= {f"p_{ph}": x / len(phases), f"q_{ph}": x / 4 / len(phases)}
    for _ in range(batches):
        counters.integrate(WindowBatch("x", wiring, np.zeros(5), np.full(5, 0.2), values), 1)
    return counters


def one_line_error(excinfo: pytest.ExceptionInfo[CounterStoreError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# --- Round trips and atomicity ---------------------------------------------------------------


def test_states_round_trip_exactly(tmp_path):
    a = counters_after(Wiring.SINGLE_PHASE, 3).state()
    b = counters_after(Wiring.THREE_PHASE_4W, 5).state()
    with open_store(tmp_path / "c.db", clock=lambda: 1234.5) as store:
        assert store.load("a") is None
        assert store.load_all() == {}
        store.save({"a": a, "b": b})
    with open_store(tmp_path / "c.db") as store:
        assert store.load("a") == a
        assert store.load("b") == b
        assert store.load_all() == {"a": a, "b": b}
        assert store.load("nobody") is None
    db = sqlite3.connect(tmp_path / "c.db")
    assert db.execute("SELECT load, sequence, saved_at FROM counters ORDER BY load").fetchall() == [
        ("a", 3, 1234.5),
        ("b", 5, 1234.5),
    ]
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )


def test_a_save_of_several_loads_is_all_or_nothing(tmp_path):
    store = open_store(tmp_path / "c.db")
    first = {"a": counters_after(Wiring.SINGLE_PHASE, 5).state()}
    first["b"] = counters_after(Wiring.SINGLE_PHASE, 5).state()
    store.save(first)
    newer_a = counters_after(Wiring.SINGLE_PHASE, 6).state()
    older_b = counters_after(Wiring.SINGLE_PHASE, 3).state()
    # "a" is written before "b" is found to rewind: the whole transaction must roll back.
    with pytest.raises(CounterStoreError, match="rewind"):
        store.save({"a": newer_a, "b": older_b})
    assert store.load_all() == first
    store.save({"a": newer_a})
    assert store.load("a") == newer_a
    store.close()


def test_rewinding_is_refused_even_from_another_connection(tmp_path):
    path = tmp_path / "c.db"
    ahead, behind = open_store(path), open_store(path)
    later = counters_after(Wiring.SINGLE_PHASE, 10).state()
    earlier = counters_after(Wiring.SINGLE_PHASE, 9).state()
    ahead.save({"main": later})
    with pytest.raises(CounterStoreError) as excinfo:
        behind.save({"main": earlier})
    assert "from sequence 10 to 9" in one_line_error(excinfo)
    behind.save({"main": later})  # the same state again (a flush) is fine
    assert behind.load("main") == later
    ahead.close()
    behind.close()


def test_saving_nothing_is_harmless(tmp_path):
    with open_store(tmp_path / "c.db") as store:
        store.save({})
        assert store.load_all() == {}


# --- Refusals --------------------------------------------------------------------------------


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "c.db"
    junk = b"kwh_imp=12.5\n" * 500
    path.write_bytes(junk)
    with pytest.raises(CounterStoreError) as excinfo:
        open_store(path)
    assert "not a usable SQLite database" in one_line_error(excinfo)
    assert path.read_bytes() == junk


def test_another_sqlite_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE readings (x)")
    db.commit()
    db.close()
    with pytest.raises(CounterStoreError) as excinfo:
        open_store(path)
    assert "not an emsbox counter store" in one_line_error(excinfo)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_a_wrong_schema_version_is_refused(tmp_path):
    path = tmp_path / "c.db"
    open_store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(CounterStoreError) as excinfo:
        open_store(path)
    assert "schema version 2" in one_line_error(excinfo)
    assert "reads version 1" in str(excinfo.value)


def test_a_damaged_state_is_reported_not_returned(tmp_path):
    path = tmp_path / "c.db"
    with open_store(path) as store:
        store.save({"main": counters_after(Wiring.SINGLE_PHASE, 2).state()})
    db = sqlite3.connect(path)
    db.execute("UPDATE counters SET state = replace(state, '\"micro\"', '\"mikro\"')")
    db.commit()
    db.close()
    with open_store(path) as store, pytest.raises(CounterStoreError) as excinfo:
        store.load("main")
    assert "'main' is unreadable" in one_line_error(excinfo)


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CounterStoreError, match="cannot open counter store"):
        open_store(tmp_path / "no" / "such" / "c.db")


# --- CounterSaver ----------------------------------------------------------------------------


class RecordingStore:
    def __init__(self) -> None:
        self.saved: list[dict] = []

    def save(self, states) -> None:
        self.saved.append(dict(states))


def test_saver_saves_at_once_then_at_most_every_interval():
    assert DEFAULT_SAVE_INTERVAL_S <= 1.0
    store = RecordingStore()
    saver = CounterSaver(store)
    assert saver.interval_s == DEFAULT_SAVE_INTERVAL_S
    saves = [saver.maybe_save({"t": t}, t) for t in (100.0, 100.2, 100.99, 101.0, 101.5, 102.3)]
    assert saves == [True, False, False, True, False, True]
    assert [s["t"] for s in store.saved] == [100.0, 101.0, 102.3]


def test_flush_always_saves_and_can_restart_the_interval():
    store = RecordingStore()
    saver = CounterSaver(store, interval_s=0.5)
    assert saver.maybe_save({"n": 1}, 10.0)
    saver.flush({"n": 2})
    assert saver.maybe_save({"n": 3}, 10.5)
    saver.flush({"n": 4}, now_s=10.6)
    assert not saver.maybe_save({"n": 5}, 11.0)
    assert [s["n"] for s in store.saved] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="interval"):
        CounterSaver(store, interval_s=0.0)


# --- Durability under kill -9 ----------------------------------------------------------------

# Integrates as fast as it can and saves every second (wall clock); prints "R seq kwh" once
# restored, "S seq kwh t" after each save returns and "I seq kwh t" every 20 ms.
CHILD = """
import sys, time
from pathlib import Path
import numpy as np
from emsbox.metering.energy import CounterState, EnergyCounters
from emsbox.metering.readings import WindowBatch
from emsbox.samples import Wiring
from emsbox.store.counters import CounterSaver, CounterStore

store = CounterStore(Path(sys.argv[1]), CounterState.from_json)
saved = store.load("main")
if saved is None:
    meter = EnergyCounters(Wiring.SINGLE_PHASE, 4.6)
else:
    meter = EnergyCounters.from_state(saved, 4.6)
print("R", meter.sequence, repr(meter.snapshot()["kwh_imp"]), flush=True)
x = np.linspace(1000.0, 3000.0, 50)
values = {"p_sys": x, "q_sys": x / 3, "s_sys": x * 1.1, "p_l1": x, "q_l1": x / 3}
batch = WindowBatch("main", Wiring.SINGLE_PHASE, np.zeros(50), np.full(50, 0.2), values)
saver = CounterSaver(store)
reported = 0.0
while True:
    meter.integrate(batch, tariff=1)
    now = time.monotonic()
    kwh = repr(meter.snapshot()["kwh_imp"])
    if saver.maybe_save({"main": meter.state()}, now):
        print("S", meter.sequence, kwh, repr(now), flush=True)
    elif now - reported >= 0.02:
        print("I", meter.sequence, kwh, repr(now), flush=True)
        reported = now
"""


KWH_PER_BATCH = float(np.sum(np.linspace(1000.0, 3000.0, 50) * 0.2)) / 3.6e6


def run_and_kill(path: Path, delay_s: float) -> tuple[tuple[int, float], list[tuple]]:
    """Run the child, SIGKILL it ``delay_s`` after it restored its state; its lines."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        first = child.stdout.readline().split()
        assert first and first[0] == "R", first
        time.sleep(delay_s)
        child.kill()
        rest = child.stdout.read()
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -9
    # A line cut by the kill has no newline: drop it.
    lines = [line.split() for line in rest.split("\n")[:-1]]
    parsed = [(kind, int(seq), float(kwh), float(t)) for kind, seq, kwh, t in lines]
    return (int(first[1]), float(first[2])), parsed


def test_counters_survive_kill_9_and_never_go_backwards(tmp_path):
    path = tmp_path / "counters.db"
    rng = random.Random()
    previous: CounterState | None = None
    for run in range(4):
        delay = rng.uniform(1.5, 3.0)
        (restored_seq, restored_kwh), lines = run_and_kill(path, delay)
        context = f"run {run}, killed {delay:.2f} s after start"

        # The child resumed exactly from what the last run left.
        if previous is None:
            assert (restored_seq, restored_kwh) == (0, 0.0), context
        else:
            assert restored_seq == previous.sequence, context
            assert restored_kwh == previous.counters()["kwh_imp"], context

        # The file opens, holds a valid state, at least as new as the last save reported.
        with open_store(path) as store:
            stored = store.load("main")
        assert stored is not None, context
        assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)
        kwh = stored.counters()["kwh_imp"]
        saves = [line for line in lines if line[0] == "S"]
        assert saves, context
        _, saved_seq, saved_kwh, _ = saves[-1]
        assert stored.sequence >= saved_seq, context
        assert kwh >= saved_kwh, context

        # What was lost is what the child integrated after the stored state: its own clock
        # says that took under one save interval, and the energy matches those batches.
        _, last_seq, last_kwh, last_t = lines[-1]
        known = [t for _, seq, _, t in lines if seq <= stored.sequence]
        lost_s = last_t - known[-1]
        assert 0.0 <= lost_s < DEFAULT_SAVE_INTERVAL_S, (context, lost_s)
        lost_batches = max(0, last_seq - stored.sequence)
        assert max(0.0, last_kwh - kwh) == pytest.approx(lost_batches * KWH_PER_BATCH, rel=1e-6)

        # Across restarts, no counter ever went backwards.
        if previous is not None:
            before, after = previous.counters(), stored.counters()
            assert all(after[n] >= before[n] for n in before), context
            assert stored.sequence >= previous.sequence, context
        previous = stored
