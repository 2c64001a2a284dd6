"""A gateway's event loop on a thread of its own, and a second thread that hands it the bus's
readings: what the Modbus and BACnet gateways run on.

The bus is read on its own thread (a blocking wait for the next reading) so that the event
loop only ever waits on sockets.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from emsbox.bus import Bus, Reading

T = TypeVar("T")

log = logging.getLogger(__name__)

FEED_QUEUE = 64  # readings waiting for the feed thread (older ones are dropped beyond it)
JOIN_TIMEOUT_S = 5.0


class LoopThreads:
    """An asyncio loop running on thread ``name``, and thread ``<name>-feed`` calling
    ``on_reading`` with each reading the bus publishes (first with the latest of every load,
    when ``latest_first``), from ``start`` until ``close``."""

    def __init__(
        self,
        name: str,
        bus: Bus,
        on_reading: Callable[[Reading], None],
        *,
        latest_first: bool = False,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.stopping = threading.Event()  # set once the gateway stops
        self._bus = bus
        self._on_reading = on_reading
        self._latest_first = latest_first
        self._loop_thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._feed_thread = threading.Thread(target=self._feed, name=f"{name}-feed", daemon=True)

    def start(self) -> None:
        """Start both threads (once the gateway is ready for its first reading)."""
        self._loop_thread.start()
        self._feed_thread.start()

    def run(self, work: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """Run ``work`` on the loop and wait for its result (or its exception)."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout_s)

    def close(self) -> None:
        """Stop the loop and both threads, and close the loop (once; later calls do nothing):
        what runs on it must have been closed first (with ``run``)."""
        self.stopping.set()
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._loop_thread.join(JOIN_TIMEOUT_S)
        self._feed_thread.join(JOIN_TIMEOUT_S)
        self.loop.close()

    def _feed(self) -> None:
        sub = self._bus.subscribe(maxlen=FEED_QUEUE)
        try:
            if self._latest_first:
                for reading in self._bus.latest_all().values():
                    self._hand(reading)
            while not self.stopping.is_set():
                message = sub.get(0.5)
                if isinstance(message, Reading):
                    self._hand(message)
        finally:
            self._bus.unsubscribe(sub)

    def _hand(self, reading: Reading) -> None:
        try:
            self._on_reading(reading)
        except Exception:  # one reading the gateway cannot take must not stop the feed
            log.exception("%s: reading of %s not taken", self._feed_thread.name, reading.load)
