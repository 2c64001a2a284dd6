"""The error every gateway raises when its settings cannot be put to work."""

from __future__ import annotations


class SetupError(Exception):
    """A gateway cannot run as configured; ``key`` is the setting at fault (``modbus.tcp_port``)
    and the message is one line for the user."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
