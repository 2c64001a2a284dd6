"""Queries from many threads while the writer writes; submit never blocks."""

from __future__ import annotations

import threading
import time
from zoneinfo import ZoneInfo

from log_readings import T0, FakeClock, config, open_store, reading, rows

from emsbox.store import log

LOADS = ("main", "ext1", "ext2")


def test_history_and_energy_from_many_threads_while_the_writer_writes(tmp_path):
    path = tmp_path / "log.db"
    clock = FakeClock(T0)
    store = open_store(
        path, config((1, None), (60, None), (3600, None), commit_interval_s=0.1), clock
    )
    store.start()
    seconds = 1800
    done = threading.Event()
    errors: list[BaseException] = []
    answers = [0]

    def produce() -> None:
        for i in range(seconds):
            clock.now = T0 + i + 1
            for n, load in enumerate(LOADS):
                store.submit(
                    reading(T0 + i + 1, {"p_sys": 100.0 * n}, {"kwh_imp": i * 0.001}, load=load)
                )
            if i % 2 == 0:
                time.sleep(0.001)  # let the writer and the readers interleave
        done.set()

    def query() -> None:
        answered = 0
        try:
            while not done.is_set() or answered < 5:
                if "main" not in store.loads():
                    continue
                h = store.history("main", ["p_sys", "kwh_imp"], T0, T0 + seconds, 300)
                s = h.series.get("kwh_imp")
                if s is not None and len(s.avg):
                    assert (s.avg[1:] >= s.avg[:-1]).all()
                ext = (
                    store.history("ext2", ["p_sys"], T0, T0 + seconds, 10)
                    if "ext2" in store.loads()
                    else None
                )
                if ext is not None and len(ext.series["p_sys"].avg):
                    assert set(ext.series["p_sys"].avg) == {200.0}
                for p in store.energy("main", "day", T0, T0 + seconds, ZoneInfo("UTC")):
                    assert p.values["kwh_imp"] >= 0.0
                store.stats()
                answered += 1
                answers[0] += 1
        except BaseException as e:
            errors.append(e)

    readers = [threading.Thread(target=query) for _ in range(6)]
    producer = threading.Thread(target=produce)
    for t in (*readers, producer):
        t.start()
    for t in (producer, *readers):
        t.join(60.0)
    assert not errors, errors[0]
    assert answers[0] > 0, "no query ran"
    store.flush()
    assert [t.rows for t in store.stats().tiers] == [seconds * 3, 30 * 3, 0]
    h = store.history("ext1", ["p_sys"], T0, T0 + seconds, 1)
    assert h.series["p_sys"].avg[0] == 100.0
    assert store.stats().last_error is None
    store.close()
    assert len(rows(path, 1)) == seconds * 3


def test_submit_never_blocks_and_drops_the_oldest_beyond_the_queue_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(log, "MAX_QUEUED", 10)
    store = open_store(tmp_path / "log.db", config((1, None)))
    started = time.perf_counter()
    for i in range(25):
        store.submit(reading(T0 + i + 1, {"p_sys": float(i)}))
    assert time.perf_counter() - started < 1.0
    stats = store.stats()
    assert (stats.queued, stats.dropped) == (10, 15)
    store.close()
    assert [r[1] for r in rows(tmp_path / "log.db", 1)] == list(range(T0 + 15, T0 + 25))


def test_a_failing_write_is_recorded_and_retried_and_the_writer_keeps_running(
    tmp_path, monkeypatch
):
    from emsbox.store import tables

    clock = FakeClock(T0)
    store = open_store(tmp_path / "log.db", config((1, None), commit_interval_s=0.1), clock)
    real_write = tables.write
    failures = [2]

    def flaky(*args, **kwargs):
        if failures[0] > 0:
            failures[0] -= 1
            raise OSError("disk full")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(tables, "write", flaky)
    store.start()
    store.submit(reading(T0 + 1, {"p_sys": 1.0}))
    store.submit(reading(T0 + 2, {"p_sys": 2.0}))
    store.flush()
    stats = store.stats()
    assert stats.last_error is not None and "disk full" in stats.last_error
    assert stats.tiers[0].rows == 2
    store.close()
