"""The digital input and output behind one small interface, and the simulated backend.

A backend reads the input's contact (closed or open) and sets the output's contact. The
simulated one keeps both in memory: the input is switched from the web app or the API, the
output's state is shown there; it is the default on a PC and a way to try the functions out.
"""

from __future__ import annotations

import threading
from typing import Protocol


class DigitalIO(Protocol):
    """One digital input and one digital output."""

    def read_input(self) -> bool:
        """Whether the input's contact is closed."""

    def write_output(self, closed: bool) -> None:
        """Close (True) or open the output's contact."""

    def close(self) -> None:
        """Release the hardware."""


class SimulatedIO:
    """An input and an output in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._input = False
        self._output = False

    def set_input(self, closed: bool) -> None:
        """Close or open the simulated input's contact."""
        with self._lock:
            self._input = closed

    def read_input(self) -> bool:
        """Whether the input's contact is closed."""
        with self._lock:
            return self._input

    def write_output(self, closed: bool) -> None:
        """Close or open the output's contact."""
        with self._lock:
            self._output = closed

    @property
    def output_closed(self) -> bool:
        """Whether the output's contact is closed."""
        with self._lock:
            return self._output

    def close(self) -> None:
        """Nothing to release."""
