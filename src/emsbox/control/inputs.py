"""The digital input: debounced, and what each of its functions does on a change.

A contact bounces for a few milliseconds when it moves; a level counts only once it has held
for ``debounce_s`` (a bounce shorter than that is ignored). Each debounced change of the input
is turned into the commands of its function:

- ``status``: none (the input is shown and its changes logged);
- ``tariff``: active selects tariff 2, inactive tariff 1 (``kwh_imp_t1``/``kwh_imp_t2``);
- ``partial_run``: active starts the partial counters, inactive stops them;
- ``partial_reset``: the change to active resets the partial counters (edge-triggered).

``inverted`` takes a closed contact as inactive (for normally closed contacts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class InputFunction(StrEnum):
    """What the digital input does."""

    STATUS = "status"
    TARIFF = "tariff"
    PARTIAL_RUN = "partial_run"
    PARTIAL_RESET = "partial_reset"


@dataclass(frozen=True)
class InputCommand:
    """A command the input's change asks for (the service's action names)."""

    action: str  # start, stop, reset, tariff
    tariff: int | None = None


class Debouncer:
    """A level that changes only once the raw level has held for ``debounce_s``."""

    def __init__(self, debounce_s: float, level: bool = False) -> None:
        if not (debounce_s >= 0.0 and math.isfinite(debounce_s)):
            raise ValueError("debounce_s must be zero or more")
        self.debounce_s = debounce_s
        self.level = level
        self._candidate = level
        self._since = -math.inf

    def feed(self, now_s: float, raw: bool) -> bool | None:
        """Take the raw level at ``now_s``; the new debounced level when it changes, else
        None. Call it on every raw change and regularly in between (the level is confirmed
        at the first call ``debounce_s`` after the raw level settled)."""
        if raw != self._candidate:
            self._candidate = raw
            self._since = now_s
        if self._candidate != self.level and now_s - self._since >= self.debounce_s:
            self.level = self._candidate
            return self.level
        return None


def commands_for(function: InputFunction, active: bool) -> list[InputCommand]:
    """The commands of ``function`` when the input has just become ``active`` (or not)."""
    if function is InputFunction.TARIFF:
        return [InputCommand("tariff", 2 if active else 1)]
    if function is InputFunction.PARTIAL_RUN:
        return [InputCommand("start" if active else "stop")]
    if function is InputFunction.PARTIAL_RESET and active:
        return [InputCommand("reset")]
    return []


class DigitalInput:
    """The input's debounced state and the commands of its function."""

    def __init__(
        self, function: InputFunction, debounce_s: float = 0.05, inverted: bool = False
    ) -> None:
        self.function = function
        self.inverted = inverted
        self._debouncer = Debouncer(debounce_s)

    @property
    def active(self) -> bool:
        """The debounced state, after inversion."""
        return self._debouncer.level

    def feed(self, now_s: float, closed: bool) -> list[InputCommand] | None:
        """Take the contact's raw state; on a debounced change, the commands it asks for
        (possibly none), else None."""
        changed = self._debouncer.feed(now_s, closed != self.inverted)
        if changed is None:
            return None
        return commands_for(self.function, changed)
