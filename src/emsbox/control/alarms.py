"""The alarm state machine: a rule on one value, with hysteresis, delays, latching and
acknowledgement.

A rule watches one variable of one load: ``above`` a threshold, ``below`` it, or ``outside`` a
band. The condition must hold for ``on_delay_s`` before the alarm becomes active, and be gone
for ``off_delay_s`` before it clears; once active, the value must come back past the threshold
by the ``hysteresis`` (above: below ``high − hysteresis``) to count as gone, so a value hovering
at the threshold does not make the alarm come and go. A latching alarm stays active after its
condition is gone until a user acknowledges it; acknowledging a non-latching alarm only marks
it seen. A missing value (the load's source not answering) neither raises nor clears.

Pure: ``update`` takes a time and a value and returns the transitions it caused; the caller
keeps the history, notifies, and drives the alarm output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Condition(StrEnum):
    """How the value is compared."""

    ABOVE = "above"
    BELOW = "below"
    OUTSIDE = "outside"


class Event(StrEnum):
    """A change of an alarm's state."""

    RAISED = "raised"
    CLEARED = "cleared"
    ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True)
class Rule:
    """What raises the alarm."""

    condition: Condition
    low: float | None = None  # below, outside
    high: float | None = None  # above, outside
    hysteresis: float = 0.0
    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    latching: bool = False

    def __post_init__(self) -> None:
        """Thresholds as the condition needs them; delays and hysteresis not negative."""
        need_high = self.condition in (Condition.ABOVE, Condition.OUTSIDE)
        need_low = self.condition in (Condition.BELOW, Condition.OUTSIDE)
        if need_high and (self.high is None or not math.isfinite(self.high)):
            raise ValueError(f"{self.condition.value} needs a finite high threshold")
        if need_low and (self.low is None or not math.isfinite(self.low)):
            raise ValueError(f"{self.condition.value} needs a finite low threshold")
        if self.condition is Condition.OUTSIDE:
            assert self.low is not None and self.high is not None
            if self.low >= self.high:
                raise ValueError("the band's low threshold must be below its high one")
        for name in ("hysteresis", "on_delay_s", "off_delay_s"):
            value = getattr(self, name)
            if not (value >= 0.0 and math.isfinite(value)):
                raise ValueError(f"{name} must be zero or more")

    def breached(self, value: float, active: bool) -> bool:
        """Whether ``value`` is in alarm; while ``active`` the thresholds are moved back by
        the hysteresis."""
        back = self.hysteresis if active else 0.0
        high = self.high is not None and value > self.high - back
        low = self.low is not None and value < self.low + back
        if self.condition is Condition.ABOVE:
            return high
        if self.condition is Condition.BELOW:
            return low
        return high or low


@dataclass
class AlarmState:
    """One alarm's state as the machine keeps it."""

    active: bool = False
    acknowledged: bool = True  # nothing to acknowledge until it is raised
    condition_since: float | None = None  # the condition's current state holds since
    condition: bool = False  # whether the (hysteresis-aware) condition holds


class Alarm:
    """One rule's alarm."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.state = AlarmState()

    def update(self, now_s: float, value: float) -> list[Event]:
        """Take the value at ``now_s``; the events this causes (raised, cleared)."""
        s = self.state
        if not math.isfinite(value):
            return []  # no value: nothing changes, the delays do not run on
        breached = self.rule.breached(value, s.active)
        if breached != s.condition or s.condition_since is None:
            s.condition, s.condition_since = breached, now_s
        held = now_s - s.condition_since
        events: list[Event] = []
        if not s.active and s.condition and held >= self.rule.on_delay_s:
            s.active, s.acknowledged = True, False
            events.append(Event.RAISED)
        elif (
            s.active
            and not s.condition
            and held >= self.rule.off_delay_s
            and (not self.rule.latching or s.acknowledged)
        ):
            s.active = False
            events.append(Event.CLEARED)
        return events

    def acknowledge(self) -> list[Event]:
        """A user saw it; a latched alarm whose condition is gone clears."""
        s = self.state
        if not s.active or s.acknowledged:
            return []
        s.acknowledged = True
        events = [Event.ACKNOWLEDGED]
        if self.rule.latching and not s.condition:
            s.active = False
            events.append(Event.CLEARED)
        return events
