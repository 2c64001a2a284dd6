"""Settings of a serial line, shared by whatever uses one (the Modbus RTU slave, polled meters)."""

from __future__ import annotations

from enum import StrEnum


class SerialParity(StrEnum):
    """Parity of a serial line."""

    NONE = "none"
    EVEN = "even"
    ODD = "odd"
