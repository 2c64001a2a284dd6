"""The gateways' loop and feed threads: readings handed over in order, the latest first when
asked, a reading the gateway cannot take not stopping the feed, a clean close."""

from __future__ import annotations

import asyncio
import threading
import time

from modbus_support import reading

from emsbox.bus import Bus
from emsbox.gateways.loop_thread import LoopThreads


def until(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.01)


def test_readings_are_handed_over_and_a_bad_one_does_not_stop_the_feed(caplog):
    bus = Bus()
    bus.publish(reading("before"))
    taken: list[str] = []

    def take(r):
        if r.load == "bad":
            raise ValueError("cannot encode")
        taken.append(r.load)

    threads = LoopThreads("test", bus, take, latest_first=True)
    threads.start()
    try:
        until(lambda: taken == ["before"])
        for load in ("a", "bad", "b"):
            bus.publish(reading(load))
        until(lambda: taken == ["before", "a", "b"])
        assert "test-feed: reading of bad not taken" in caplog.text

        async def where() -> str:
            await asyncio.sleep(0)
            return threading.current_thread().name

        assert threads.run(where(), 5.0) == "test"
    finally:
        threads.close()
    assert threads.stopping.is_set() and threads.loop.is_closed()
    names = {t.name for t in threading.enumerate()}
    assert "test" not in names and "test-feed" not in names


def test_close_twice_does_nothing_more():
    threads = LoopThreads("twice", Bus(), lambda r: None)
    threads.start()
    threads.close()
    threads.close()
    assert threads.loop.is_closed()
