"""Built-in alarms for the system itself: what they watch, and the clock-jump detector.

The service checks its own parts (a source not answering, the store failing, storage almost
full, the MQTT outbox full) and hands each check to the controller as a ``SystemCondition``;
the controller runs them through the same state machine, history and notifications as the
alarms on measured values. Their names start with ``SYSTEM_PREFIX``, which an alarm rule's
name cannot contain (no colon), so the two never clash.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from emsbox.control.alarms import Condition, Rule

SYSTEM_PREFIX = "System: "
CLOCK_JUMP = SYSTEM_PREFIX + "clock jump"
# A step of the wall clock this large moves logged timestamps noticeably; NTP slews smaller
# offsets without a step.
CLOCK_JUMP_S = 5.0


@dataclass(frozen=True)
class SystemCondition:
    """One built-in alarm's condition now, with a one-line detail."""

    name: str
    active: bool
    detail: str = ""
    load: str = ""
    on_delay_s: float = 0.0
    latching: bool = False

    def rule(self) -> Rule:
        """The state machine's rule: raised while the condition holds (fed 1 or 0)."""
        return Rule(Condition.ABOVE, high=0.5, on_delay_s=self.on_delay_s, latching=self.latching)


def _since_boot() -> float:
    """A clock that never steps and, unlike the monotonic one, runs on through a suspend (so
    that waking up is not taken for a jump of the wall clock)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class ClockWatch:
    """Notices the wall clock stepping: its advance against a clock that never steps."""

    def __init__(
        self,
        threshold_s: float = CLOCK_JUMP_S,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = _since_boot,
    ) -> None:
        self._threshold_s = threshold_s
        self._wall, self._monotonic = wall, monotonic
        self._last: tuple[float, float] | None = None
        self._detail = ""

    def check(self) -> SystemCondition:
        """Active when the clock jumped since the last check (latching: a user must see it)."""
        wall, mono = self._wall(), self._monotonic()
        jump = 0.0
        if self._last is not None:
            jump = (wall - self._last[0]) - (mono - self._last[1])
        self._last = (wall, mono)
        active = abs(jump) >= self._threshold_s
        if active:
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(wall))
            self._detail = f"the clock was set {jump:+.0f} s at {when}"
        return SystemCondition(CLOCK_JUMP, active, self._detail, latching=True)
