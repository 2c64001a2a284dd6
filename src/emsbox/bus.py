"""The measurement bus: the latest reading of every load, and readings pushed to subscribers.

The acquisition thread publishes; consumers (store, web, gateways) either read the latest
reading of a load or subscribe. A subscriber gets its own bounded queue: a slow subscriber
loses its oldest readings (counted in ``dropped``), never slows the meter or other subscribers.
Subscribers that ask for fast values also get every measurement window as it is computed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from emsbox.samples import Wiring

DEFAULT_QUEUE_LENGTH = 600


@dataclass(frozen=True)
class Reading:
    """One consistent set of a load's values: one publishing cycle (at least every second).

    ``values`` are the instantaneous variables aggregated over the cycle's windows (RMS for
    voltages, currents and THD, time-weighted mean for powers and frequency); ``minimum`` and
    ``maximum`` are their extremes over those windows. ``counters`` are the energy and hour
    counters at the end of the cycle. Times are seconds since the Unix epoch.
    """

    load: str
    wiring: Wiring
    timestamp_s: float
    duration_s: float
    windows: int
    values: Mapping[str, float]
    minimum: Mapping[str, float]
    maximum: Mapping[str, float]
    counters: Mapping[str, float]
    tariff: int = 1
    partial_running: bool = True

    def as_dict(self) -> dict[str, float | int | bool]:
        """Every variable under its VARIABLES.md name, with the state variables."""
        return {
            **self.values,
            **self.counters,
            "tariff": self.tariff,
            "partial_running": self.partial_running,
        }


@dataclass(frozen=True)
class WindowValues:
    """The values of one measurement window of one load (fast values, 10/12 cycles)."""

    load: str
    start_s: float
    duration_s: float
    values: Mapping[str, float]


Message = Reading | WindowValues


class Publisher(Protocol):
    """What a producer of readings needs: the bus, or a pipe to the bus of another process."""

    def publish(self, message: Message) -> None:
        """Hand a reading or a fast window on."""

    def has_fast_subscribers(self) -> bool:
        """Whether anyone asked for every measurement window."""


@dataclass
class Subscription:
    """A subscriber's queue of messages; ``get`` blocks up to a timeout, ``close`` ends it."""

    fast: bool
    maxlen: int = DEFAULT_QUEUE_LENGTH
    dropped: int = 0
    _items: deque[Message] = field(default_factory=deque)
    _ready: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False

    def put(self, message: Message) -> None:
        """Queue a message, dropping the oldest when the queue is full."""
        with self._ready:
            if len(self._items) >= self.maxlen:
                self._items.popleft()
                self.dropped += 1
            self._items.append(message)
            self._ready.notify()

    def get(self, timeout_s: float | None = None) -> Message | None:
        """The next message, or None after ``timeout_s`` or once closed and empty."""
        with self._ready:
            if not self._items and not self._closed:
                self._ready.wait(timeout_s)
            return self._items.popleft() if self._items else None

    def drain(self) -> list[Message]:
        """Every queued message, without waiting."""
        with self._ready:
            items = list(self._items)
            self._items.clear()
            return items

    def close(self) -> None:
        """Wake any waiting reader; later gets return what is left, then None."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    @property
    def closed(self) -> bool:
        """Whether the subscription was closed."""
        return self._closed


class Bus:
    """Latest reading per load plus fan-out to subscribers; safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, Reading] = {}
        self._arrived: dict[str, float] = {}  # when each load's latest came (monotonic)
        self._subscribers: list[Subscription] = []
        self.published = 0

    def publish(self, message: Message) -> None:
        """Hand a reading (or a fast window) to every subscriber that wants it."""
        with self._lock:
            if isinstance(message, Reading):
                self._latest[message.load] = message
                self._arrived[message.load] = time.monotonic()
                self.published += 1
            subscribers = list(self._subscribers)
        for sub in subscribers:
            if isinstance(message, Reading) or sub.fast:
                sub.put(message)

    def latest(self, load: str) -> Reading | None:
        """The most recent reading of ``load``, or None before its first."""
        with self._lock:
            return self._latest.get(load)

    def age_s(self, load: str) -> float | None:
        """Seconds since the latest reading of ``load`` was published (elapsed time, which a
        clock set by NTP does not move), or None before its first."""
        with self._lock:
            arrived = self._arrived.get(load)
        return None if arrived is None else time.monotonic() - arrived

    def latest_all(self) -> Mapping[str, Reading]:
        """The most recent reading of every load that has one."""
        with self._lock:
            return dict(self._latest)

    def subscribe(self, fast: bool = False, maxlen: int = DEFAULT_QUEUE_LENGTH) -> Subscription:
        """A new subscription; ``fast`` adds every measurement window to the readings."""
        sub = Subscription(fast=fast, maxlen=maxlen)
        with self._lock:
            self._subscribers.append(sub)
        return sub

    def has_fast_subscribers(self) -> bool:
        """Whether anyone asked for every measurement window (they cost time to hand out)."""
        with self._lock:
            return any(sub.fast for sub in self._subscribers)

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub`` and close it."""
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)
        sub.close()
