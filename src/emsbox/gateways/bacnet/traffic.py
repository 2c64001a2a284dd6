"""What keeps a flood of datagrams cheap: the rate limit on answers to unconfirmed requests,
and the once-a-minute log line per source of malformed traffic."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

LOG_EVERY_S = 60.0  # malformed traffic is logged once a minute per source, and counted
UNCONFIRMED_RATE = 100.0  # I-Am / I-Have answers per second (a Who-Is flood is dropped)
UNCONFIRMED_BURST = 200.0


class AnswerRate:
    """A token bucket: UNCONFIRMED_RATE answers a second, UNCONFIRMED_BURST at once."""

    def __init__(self) -> None:
        self._tokens = UNCONFIRMED_BURST
        self._at = time.monotonic()

    def take(self) -> bool:
        """Whether one more answer may go now (and count it)."""
        now = time.monotonic()
        self._tokens = min(UNCONFIRMED_BURST, self._tokens + (now - self._at) * UNCONFIRMED_RATE)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class TrafficLog:
    """Logs what is wrong with a source's traffic, one line per source per minute."""

    def __init__(self) -> None:
        self._logged_at: dict[str, float] = {}

    def note(self, source: tuple[str, int], what: str, malformed: int, trace: bool = False) -> None:
        """Log ``what`` came from ``source`` (with the count of ``malformed`` datagrams so
        far), unless that source was logged less than a minute ago: never a traceback per
        datagram of a flood."""
        now = time.monotonic()
        host = source[0]
        if now - self._logged_at.get(host, -LOG_EVERY_S) < LOG_EVERY_S:
            return
        if len(self._logged_at) > 1024:
            self._logged_at.clear()
        self._logged_at[host] = now
        if trace:
            log.exception("bacnet: %s from %s:%d", what, *source)
        else:
            log.info(
                "bacnet: %s from %s:%d (%d malformed datagrams so far; more from there are "
                "counted, not logged, for a minute)",
                what,
                *source,
                malformed,
            )
