"""The digital input and output behind one small interface, and the simulated backend.

A backend reads the input's contact (closed or open) and sets the output's contact. The
simulated one keeps both in memory: the input is switched from the web app or the API, the
output's state is shown there; it is the default on a PC and a way to try the functions out.
The others (GPIO lines in ``emsbox.control.gpio``, a remote I/O module over Modbus TCP in
``emsbox.gateways.modbus.remote_io``) may also report their health: a backend that cannot
reach its hardware says why in one line, and the controller shows it rather than failing.
"""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable


class IoError(Exception):
    """A backend that cannot be opened; the message says why in one line."""


class DigitalIO(Protocol):
    """One digital input and one digital output."""

    def read_input(self) -> bool:
        """Whether the input's contact is closed."""

    def write_output(self, closed: bool) -> None:
        """Close (True) or open the output's contact."""

    def close(self) -> None:
        """Release the hardware."""


@runtime_checkable
class ReportsHealth(Protocol):
    """A backend that knows whether its hardware answers (optional for a backend)."""

    def health(self) -> str | None:
        """None while it works; otherwise why not, in one line."""


class UnavailableIO:
    """Stands in for a backend that could not be opened: the input reads open, the output
    is not set, and the health tells why."""

    def __init__(self, error: str) -> None:
        self.error = error

    def read_input(self) -> bool:
        """Open: nothing is known of the contact."""
        return False

    def write_output(self, closed: bool) -> None:
        """Nothing to set."""

    def health(self) -> str | None:
        """Why the backend could not be opened."""
        return self.error

    def close(self) -> None:
        """Nothing to release."""


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
