"""The log store's on-disk outbox: logged records, their numbers, acknowledgement and bound."""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from log_readings import T0, FakeClock, config, open_store, reading

from emsbox.store.config import StoreConfig, Tier
from emsbox.store.log import LogStore

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ONE_S = config((1, None))
# Tiers of 1 s and 60 s, logging the 60 s one.
MINUTES = StoreConfig(
    tiers=[Tier(resolution_s=1), Tier(resolution_s=60)],
    logging_interval_s=60,
    commit_interval_s=1.0,
)
EVERYTHING = 10**9


def records(store: LogStore) -> list[tuple[int, dict]]:
    """Every record waiting in the outbox, oldest first, decoded."""
    return [(seq, json.loads(text)) for seq, text in store.outbox_pending(0, EVERYTHING)]


def seqs(store: LogStore) -> list[int]:
    """The numbers of every record waiting."""
    return [seq for seq, _ in store.outbox_pending(0, EVERYTHING)]


def second(i: int, load: str = "main", p: float | None = None):
    """A 1 s reading of second ``i`` after T0 (first-tier bucket T0 + i)."""
    return reading(
        T0 + i + 1,
        {"p_sys": 1000.0 + i if p is None else p},
        {"kwh_imp": 100.0 + i / 1000},
        load=load,
    )


def fill(store: LogStore, start: int, stop: int, load: str = "main") -> None:
    """Submit one reading per second of [start, stop)."""
    for i in range(start, stop):
        store.submit(second(i, load))


def test_every_closed_first_tier_bucket_becomes_one_numbered_record(tmp_path):
    store = open_store(tmp_path / "log.db", ONE_S, FakeClock(T0))
    store.set_outbox(1000)
    fill(store, 0, 20)
    store.flush()
    found = records(store)
    assert [seq for seq, _ in found] == list(range(1, 21))
    assert [r["ts"] for _, r in found] == [T0 + i for i in range(20)]
    assert {r["load"] for _, r in found} == {"main"}
    assert {r["interval_s"] for _, r in found} == {1}
    assert [r["p_sys"] for _, r in found] == [1000.0 + i for i in range(20)]
    assert [r["kwh_imp"] for _, r in found] == [100.0 + i / 1000 for i in range(20)]
    stats = store.outbox_stats()
    assert (stats.records, stats.oldest_seq, stats.newest_seq) == (20, 1, 20)
    assert (stats.dropped, stats.max_records) == (0, 1000)
    store.close()


def test_a_record_is_one_flat_object_of_the_bucket(tmp_path):
    store = open_store(tmp_path / "log.db", ONE_S, FakeClock(T0))
    store.set_outbox(1000)
    nan = math.nan
    first = reading(
        T0 + 0.5,
        {"p_sys": 100.0, "v_l1": nan, "v_l2": 230.1},
        {"kwh_imp": 123456.789012, "kwh_exp": nan, "hours_on": 10.0},
        duration=0.5,
        minimum={"p_sys": 90.0, "v_l2": 229.0},
        maximum={"p_sys": 120.0, "v_l2": 231.5},
        tariff=1,
    )
    later = reading(
        T0 + 1.0,
        {"p_sys": 200.0, "v_l1": nan, "v_l2": 230.1},
        {"kwh_imp": 123456.790125, "kwh_exp": nan, "hours_on": 10.5},
        duration=0.5,
        minimum={"p_sys": 150.0, "v_l2": 230.0},
        maximum={"p_sys": 250.0, "v_l2": 230.5},
        tariff=2,
    )
    store.submit(first)
    store.submit(dataclasses.replace(later, partial_running=False))
    store.flush()
    [(seq, text)] = store.outbox_pending(0, 10)
    assert seq == 1
    record = json.loads(text)
    assert record == {
        "load": "main",
        "ts": T0,
        "time": "2023-11-15T00:00:00Z",
        "interval_s": 1,
        "covered_s": 1.0,
        # Averages weighted by duration, with the extremes of the readings.
        "p_sys": 150.0,
        "p_sys_min": 90.0,
        "p_sys_max": 250.0,
        # float32 values as their shortest decimal, not 230.10000610351562.
        "v_l2": 230.1,
        "v_l2_min": 229.0,
        "v_l2_max": 231.5,
        # State variables: their time-weighted mean only.
        "tariff": 1.5,
        "partial_running": 0.5,
        # Counters at their end value, every digit kept; v_l1 and kwh_exp had no value.
        "kwh_imp": 123456.790125,
        "hours_on": 10.5,
    }
    assert (
        datetime.fromtimestamp(record["ts"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ") == (record["time"])
    )
    assert "NaN" not in text and " " not in text
    store.close()


def test_nan_values_are_left_out_of_records(tmp_path):
    store = open_store(tmp_path / "log.db", ONE_S, FakeClock(T0))
    store.set_outbox(1000)
    store.submit(reading(T0 + 1, {"p_sys": math.nan, "i_l1": 5.0}, {"kwh_imp": math.nan}))
    store.submit(reading(T0 + 2, {"p_sys": 7.0, "i_l1": math.inf}, {"kwh_imp": 3.0}))
    store.flush()
    [(_, a), (_, b)] = records(store)
    assert not {"p_sys", "p_sys_min", "p_sys_max", "kwh_imp"} & set(a)
    assert (a["i_l1"], a["i_l1_min"], a["i_l1_max"]) == (5.0, 5.0, 5.0)
    assert not {"i_l1", "i_l1_min", "i_l1_max"} & set(b)
    assert (b["p_sys"], b["kwh_imp"]) == (7.0, 3.0)
    texts = [text for _, text in store.outbox_pending(0, 10)]
    assert not any(c in t for t in texts for c in ("NaN", "Infinity"))
    store.close()


def test_with_a_logging_interval_of_a_minute_only_the_minutes_enter_the_outbox(tmp_path):
    store = open_store(tmp_path / "log.db", MINUTES, FakeClock(T0))
    store.set_outbox(1000)
    for i in range(150):
        store.submit(second(i, "main"))
        store.submit(second(i, "hvac"))
    store.flush()
    # Minutes 0 and 1 are closed; minute 2 still waits for its last 30 seconds.
    found = records(store)
    assert sorted((r["load"], r["ts"]) for _, r in found) == [
        (load, T0 + m * 60) for load in ("hvac", "main") for m in (0, 1)
    ]
    assert {r["interval_s"] for _, r in found} == {60}
    assert {r["covered_s"] for _, r in found} == {60.0}
    main = {r["ts"]: r for _, r in found if r["load"] == "main"}
    assert main[T0]["p_sys"] == pytest.approx(1000.0 + 29.5)
    assert (main[T0]["p_sys_min"], main[T0]["p_sys_max"]) == (1000.0, 1059.0)
    assert main[T0 + 60]["kwh_imp"] == 100.0 + 119 / 1000
    for i in range(150, 200):
        store.submit(second(i, "main"))
    store.flush()
    # Minute 2 of main closed: one more record, not one per second.
    assert [(r["load"], r["ts"]) for _, r in records(store)[len(found) :]] == [("main", T0 + 120)]
    assert seqs(store) == list(range(1, 6))
    store.close()


def test_without_set_outbox_nothing_enters_and_turning_it_off_keeps_what_waits(tmp_path):
    store = open_store(tmp_path / "log.db", ONE_S, FakeClock(T0))
    fill(store, 0, 5)
    store.flush()
    assert store.outbox_pending(0, 100) == []
    stats = store.outbox_stats()
    assert (stats.records, stats.oldest_seq, stats.newest_seq) == (0, None, None)
    assert stats.max_records is None
    assert not store.outbox_filled.is_set()
    store.set_outbox(1000)
    fill(store, 5, 10)
    store.flush()
    kept = store.outbox_pending(0, 100)
    assert [json.loads(r)["ts"] for _, r in kept] == [T0 + i for i in range(5, 10)]
    store.set_outbox(None)
    fill(store, 10, 15)
    store.flush()
    assert store.outbox_pending(0, 100) == kept
    assert store.outbox_stats().max_records is None
    assert store.stats().tiers[0].rows == 15  # the log itself took everything
    store.close()


def test_acknowledged_records_go_at_the_next_pass_and_later_ones_stay(tmp_path):
    store = open_store(tmp_path / "log.db", ONE_S, FakeClock(T0))
    store.set_outbox(1000)
    fill(store, 0, 10)
    store.flush()
    store.acknowledge(4)
    assert seqs(store) == list(range(1, 11))  # not before the writer's next pass
    store.flush()
    assert seqs(store) == list(range(5, 11))
    assert [r["ts"] for _, r in records(store)] == [T0 + i for i in range(4, 10)]
    store.acknowledge(2)  # an older acknowledgement changes nothing
    store.flush()
    assert seqs(store) == list(range(5, 11))
    stats = store.outbox_stats()
    assert (stats.records, stats.oldest_seq, stats.newest_seq, stats.dropped) == (6, 5, 10, 0)
    store.close()


def test_pending_gives_the_records_after_a_number_oldest_first_limited(tmp_path):
    store = open_store(tmp_path / "log.db", ONE_S, FakeClock(T0))
    store.set_outbox(1000)
    fill(store, 0, 10)
    store.flush()
    assert [s for s, _ in store.outbox_pending(6, 2)] == [7, 8]
    assert [s for s, _ in store.outbox_pending(0, 3)] == [1, 2, 3]
    assert [s for s, _ in store.outbox_pending(8, 100)] == [9, 10]
    assert store.outbox_pending(10, 5) == []
    assert store.outbox_pending(0, 0) == []
    store.close()


def test_a_full_outbox_drops_the_oldest_counts_them_and_keeps_the_count(tmp_path):
    path = tmp_path / "log.db"
    store = open_store(path, ONE_S, FakeClock(T0))
    store.set_outbox(100)
    fill(store, 0, 130)
    store.flush()
    stats = store.outbox_stats()
    assert (stats.records, stats.oldest_seq, stats.newest_seq) == (100, 31, 130)
    assert (stats.dropped, stats.max_records) == (30, 100)
    assert seqs(store) == list(range(31, 131))
    assert records(store)[0][1]["ts"] == T0 + 30
    error = store.stats().last_error
    assert error is not None and "outbox full" in error and "30" in error
    fill(store, 130, 150)
    store.flush()
    assert seqs(store) == list(range(51, 151))
    assert store.outbox_stats().dropped == 50
    store.close()
    store = open_store(path, ONE_S, FakeClock(T0))
    stats = store.outbox_stats()
    assert (stats.records, stats.oldest_seq, stats.newest_seq) == (100, 51, 150)
    assert (stats.dropped, stats.max_records) == (50, None)
    assert store.stats().last_error is None  # nothing was dropped since this opening
    store.close()


def test_numbers_are_never_used_again(tmp_path):
    path = tmp_path / "log.db"
    store = open_store(path, ONE_S, FakeClock(T0))
    store.set_outbox(1000)
    fill(store, 0, 5)
    store.flush()
    store.acknowledge(5)
    store.flush()
    assert seqs(store) == []
    fill(store, 5, 8)
    store.flush()
    assert seqs(store) == [6, 7, 8]  # the emptied outbox goes on counting
    store.acknowledge(8)
    store.close()  # the final pass deletes what was acknowledged
    store = open_store(path, ONE_S, FakeClock(T0))
    stats = store.outbox_stats()
    assert (stats.records, stats.oldest_seq, stats.newest_seq) == (0, None, None)
    store.set_outbox(1000)
    fill(store, 8, 10)
    store.flush()
    assert seqs(store) == [9, 10]
    store.close()
    store = open_store(path, ONE_S, FakeClock(T0))
    store.set_outbox(1000)
    fill(store, 10, 11)
    store.flush()
    assert seqs(store) == [9, 10, 11]
    store.close()


def test_outbox_filled_is_set_by_a_pass_that_added_records(tmp_path):
    store = open_store(tmp_path / "log.db", ONE_S, FakeClock(T0))
    fill(store, 0, 3)
    store.flush()
    assert not store.outbox_filled.is_set()  # the outbox is off
    store.set_outbox(1000)
    store.flush()
    assert not store.outbox_filled.is_set()  # nothing new
    fill(store, 3, 6)
    store.flush()
    assert store.outbox_filled.is_set()
    store.outbox_filled.clear()
    store.flush()
    assert not store.outbox_filled.is_set()
    store.submit(second(6))
    store.flush()
    assert store.outbox_filled.is_set()
    store.close()


def test_outbox_filled_wakes_a_waiting_forwarder_from_the_writer_thread(tmp_path):
    clock = FakeClock(T0)
    store = open_store(tmp_path / "log.db", ONE_S, clock)
    store.set_outbox(1000)
    fill(store, 0, 3)  # seconds 0 and 1 are closed by the readings after them
    assert not store.outbox_filled.is_set()
    store.start()
    try:
        assert store.outbox_filled.wait(10.0)  # the writer thread's first pass
        assert seqs(store)[:2] == [1, 2]
    finally:
        store.close()


def test_a_pass_that_only_deletes_acknowledged_records_does_not_set_outbox_filled(tmp_path):
    store = open_store(tmp_path / "log.db", ONE_S, FakeClock(T0))
    store.set_outbox(1000)
    fill(store, 0, 3)
    store.flush()
    store.outbox_filled.clear()
    store.acknowledge(3)
    store.flush()
    assert seqs(store) == []
    assert not store.outbox_filled.is_set()
    store.close()


@pytest.mark.parametrize("reopen", [False, True], ids=["same-run", "after-reopen"])
def test_a_bucket_written_again_is_recorded_again_under_a_new_number(tmp_path, reopen):
    path = tmp_path / "log.db"
    store = open_store(path, ONE_S, FakeClock(T0))
    store.set_outbox(1000)
    store.submit(second(0))
    store.submit(reading(T0 + 1.5, {"p_sys": 100.0}, {"kwh_imp": 1.0}, duration=0.5))
    store.flush()  # closes second 1 half-filled
    if reopen:
        store.close()
        store = open_store(path, ONE_S, FakeClock(T0))
        store.set_outbox(1000)
    store.submit(reading(T0 + 2.0, {"p_sys": 300.0}, {"kwh_imp": 2.0}, duration=0.5))
    store.flush()
    found = records(store)
    assert [(seq, r["ts"]) for seq, r in found] == [(1, T0), (2, T0 + 1), (3, T0 + 1)]
    earlier, later = found[1][1], found[2][1]
    assert (earlier["covered_s"], earlier["p_sys"], earlier["kwh_imp"]) == (0.5, 100.0, 1.0)
    # The later record is the merged bucket: it replaces the earlier one.
    assert (later["covered_s"], later["p_sys"], later["kwh_imp"]) == (1.0, 200.0, 2.0)
    assert (later["p_sys_min"], later["p_sys_max"]) == (100.0, 300.0)
    assert store.stats().tiers[0].rows == 2  # merged in the log, not duplicated
    store.close()


def test_late_seconds_record_their_minute_again(tmp_path):
    store = open_store(tmp_path / "log.db", MINUTES, FakeClock(T0))
    store.set_outbox(1000)
    fill(store, 0, 10)
    fill(store, 20, 130)
    store.flush()
    found = records(store)
    assert [(r["ts"], r["covered_s"]) for _, r in found] == [(T0, 50.0), (T0 + 60, 60.0)]
    fill(store, 10, 20)  # seconds of a minute already rolled up
    store.flush()
    [(seq, again)] = records(store)[2:]
    assert seq == 3
    assert (again["ts"], again["covered_s"], again["interval_s"]) == (T0, 60.0, 60)
    assert again["p_sys"] == pytest.approx(1000.0 + 29.5)
    store.close()


def test_loads_interleave_and_each_load_is_in_bucket_order(tmp_path):
    store = open_store(tmp_path / "log.db", ONE_S, FakeClock(T0))
    store.set_outbox(1000)
    loads = ("main", "hvac", "pv")
    for i in range(30):
        for load in loads:
            store.submit(second(i, load))
    store.flush()
    found = records(store)
    assert [seq for seq, _ in found] == list(range(1, 91))
    for load in loads:
        assert [r["ts"] for _, r in found if r["load"] == load] == [T0 + i for i in range(30)]
    order = [r["load"] for _, r in found]
    # Interleaved as they closed, not one load after the other.
    assert order[:3] != [order[0]] * 3
    assert max(i for i, x in enumerate(order) if x == "main") > order.index("hvac")
    store.close()


def test_bucket_order_holds_per_load_whatever_the_interleaving(tmp_path):
    store = open_store(tmp_path / "log.db", ONE_S, FakeClock(T0))
    store.set_outbox(1000)
    # main runs ahead of hvac by 5 seconds; pv reports every other second.
    for i in range(40):
        store.submit(second(i, "main"))
        if i >= 5:
            store.submit(second(i - 5, "hvac"))
        if i % 2 == 0:
            store.submit(second(i, "pv"))
    store.flush()
    found = records(store)
    for load, expected in (
        ("main", range(40)),
        ("hvac", range(35)),
        ("pv", range(0, 40, 2)),
    ):
        assert [r["ts"] for _, r in found if r["load"] == load] == [T0 + i for i in expected]
    store.close()


# -- properties --------------------------------------------------------------------------


@SETTINGS
@given(
    bound=st.integers(1, 20),
    rounds=st.lists(
        st.tuples(st.integers(0, 15), st.floats(0.0, 1.0), st.booleans()),
        min_size=1,
        max_size=6,
    ),
)
def test_what_remains_is_one_run_of_numbers_ending_at_the_newest(bound, rounds):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "log.db"
        store = open_store(path, ONE_S, FakeClock(T0))
        store.set_outbox(bound)
        newest = acked = dropped = 0  # the model
        waiting: list[int] = []
        next_second = 0
        for added, ack_share, reopen in rounds:
            fill(store, next_second, next_second + added)
            next_second += added
            store.flush()
            # The pass adds, deletes what was acknowledged, then drops beyond the bound.
            waiting += range(newest + 1, newest + added + 1)
            newest += added
            waiting = [s for s in waiting if s > acked]
            over = max(0, len(waiting) - bound)
            dropped += over
            waiting = waiting[over:]
            found = seqs(store)
            assert found == waiting
            if found:
                assert found == list(range(found[0], newest + 1))
            assert len(found) <= bound
            stats = store.outbox_stats()
            assert (stats.records, stats.dropped) == (len(found), dropped)
            assert stats.newest_seq == (newest if found else None)
            # Acknowledge part of what waits, as a forwarder would.
            if found:
                ack = found[0] - 1 + round(ack_share * len(found))
                store.acknowledge(ack)
                acked = max(acked, ack)
            if reopen:
                store.close()  # its final pass applies the acknowledgement
                waiting = [s for s in waiting if s > acked]
                store = open_store(path, ONE_S, FakeClock(T0))
                store.set_outbox(bound)
                assert seqs(store) == waiting
        store.close()


@SETTINGS
@given(
    seconds=st.lists(st.integers(0, 59), min_size=1, max_size=40),
    loads=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=40),
)
def test_every_first_tier_bucket_written_is_recorded_once_and_numbers_run_on(seconds, loads):
    with tempfile.TemporaryDirectory() as d:
        store = open_store(Path(d) / "log.db", ONE_S, FakeClock(T0))
        store.set_outbox(10_000)
        # In time order per load: one reading per (load, second).
        pairs = sorted(set(zip(loads, seconds, strict=False)), key=lambda p: p[1])
        for load, i in pairs:
            store.submit(second(i, load))
        store.flush()
        found = records(store)
        assert [seq for seq, _ in found] == list(range(1, len(pairs) + 1))
        assert sorted((r["load"], r["ts"]) for _, r in found) == sorted(
            (load, T0 + i) for load, i in pairs
        )
        for load in set(loads):
            ts = [r["ts"] for _, r in found if r["load"] == load]
            assert ts == sorted(ts)
        store.close()
