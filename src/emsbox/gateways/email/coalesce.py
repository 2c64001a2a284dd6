"""The coalescing of a flapping alarm's events into fewer messages.

A raised or cleared event of an alarm that was mailed less than a minute ago is held rather
than sent: when the minute is over the latest held event is sent, saying how many earlier ones
it stands for, and while the alarm keeps changing the wait doubles up to an hour. Other events
(acknowledgements) are always sent at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from emsbox.gateways.email.message import Folded, Letterhead

# A raised or cleared event of an alarm mailed less than this ago is held, then sent with the
# count of those it stands for; while the alarm keeps changing the wait doubles, up to
# COALESCE_MAX (times the first wait).
COALESCE_S = 60.0
COALESCE_MAX = 60
COALESCED_EVENTS = frozenset({"raised", "cleared"})

# What sends an alarm event: the notice, the letterhead, when it was made and the earlier
# events it stands for.
Send = Callable[[Mapping[str, object], Letterhead, float, Folded | None], None]


@dataclass
class _Window:
    """The alarm's last message went less than ``length_s`` ago: its events are held until
    then, the latest kept and the earlier ones counted by kind."""

    length_s: float
    held: tuple[dict[str, object], Letterhead, float] | None = None  # notice, head, created
    counts: dict[str, int] = field(default_factory=dict)
    since_s: float | None = None  # of the first folded event

    def folded(self) -> Folded | None:
        """The earlier events the held one stands for; None if there were none."""
        if not self.counts:
            return None
        return Folded(dict(self.counts), self.since_s or 0.0)


class Coalescer:
    """Passes alarm events on to ``send``, holding those of an alarm mailed a short while ago.

    ``accept`` and ``flush`` run on the sending thread only (``accept`` on its event loop);
    ``folded`` may be read from any thread.
    """

    def __init__(self, send: Send, first_s: float = COALESCE_S) -> None:
        self._send = send
        self._first_s = first_s  # 0: nothing is ever held
        self._windows: dict[str, _Window] = {}  # the alarms mailed a short while ago, by name
        self._lock = threading.Lock()
        self._folded = 0

    @property
    def folded(self) -> int:
        """How many events were folded into a later message."""
        with self._lock:
            return self._folded

    def accept(self, notice: dict[str, object], head: Letterhead, created_s: float) -> None:
        """A new event is sent, unless its alarm was mailed a short while ago: then it is held
        until that while is over."""
        name = str(notice.get("name", ""))
        if str(notice.get("event")) in COALESCED_EVENTS and self._first_s > 0:
            window = self._windows.get(name)
            if window is not None:
                if window.held is not None:
                    earlier = window.held[0]
                    kind = str(earlier.get("event"))
                    window.counts[kind] = window.counts.get(kind, 0) + 1
                    if window.since_s is None:
                        when = earlier.get("time_s")
                        window.since_s = float(when) if isinstance(when, int | float) else 0.0
                    with self._lock:
                        self._folded += 1
                window.held = (notice, head, created_s)
                return
            self._open_window(name, self._first_s)
        self._send(notice, head, created_s, None)

    def flush(self) -> None:
        """Every held event is sent now (the loop stops): nothing is lost."""
        for window in self._windows.values():
            if window.held is not None:
                notice, head, created_s = window.held
                self._send(notice, head, created_s, window.folded())
        self._windows = {}

    def _open_window(self, name: str, length_s: float) -> None:
        self._windows[name] = _Window(length_s)
        asyncio.get_running_loop().call_later(length_s, self._window_over, name)

    def _window_over(self, name: str) -> None:
        """The latest held event of the alarm goes, with the count of the earlier; the next
        wait is twice as long. Nothing held: the alarm is quiet again."""
        window = self._windows.pop(name, None)
        if window is None or window.held is None:
            return
        notice, head, created_s = window.held
        self._open_window(name, min(window.length_s * 2, self._first_s * COALESCE_MAX))
        self._send(notice, head, created_s, window.folded())
