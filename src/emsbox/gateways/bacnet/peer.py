"""Where the device's APDUs go: a peer's address and route, and the sending of an APDU to it."""

from __future__ import annotations

from typing import NamedTuple, Protocol


class Peer(NamedTuple):
    """Where an answer goes: the B/IP address, and the remote network behind a router."""

    address: tuple[str, int]
    snet: int | None = None
    sadr: bytes = b""


class Send(Protocol):
    """Sends an APDU to a peer through the device's socket."""

    def __call__(self, peer: Peer, apdu: bytes, expecting_reply: bool = False) -> None:
        """Send ``apdu`` to ``peer``; ``expecting_reply`` marks a confirmed request."""
