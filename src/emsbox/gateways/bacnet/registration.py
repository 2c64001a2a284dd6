"""The foreign-device registration with a BBMD (Annex J.5.2): sent, renewed, and its result."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

from emsbox.gateways.bacnet import frames
from emsbox.gateways.bacnet.config import BacnetConfig, parse_host_port

log = logging.getLogger(__name__)

BBMD_ANSWER_S = 5.0  # a registration unanswered for this long counts as failed

SendTo = Callable[[bytes, tuple[str, int]], None]  # a BVLC message to a B/IP address


class Registration:
    """The foreign-device registration with one BBMD (J.5.2)."""

    def __init__(self, address: tuple[str, int], ttl_s: int, sendto: SendTo) -> None:
        self.address = address
        self.ttl_s = ttl_s
        self.registered = False
        self.detail = "registering"
        self.sent_at = 0.0
        self.answered = True
        self.next_at = 0.0
        self._sendto = sendto

    def register(self) -> None:
        """Send (or renew) the registration when it is due (J.5.2.1)."""
        now = time.monotonic()
        if not self.answered and now - self.sent_at > BBMD_ANSWER_S:
            self.registered = False
            self.detail = f"BBMD {self.address[0]}:{self.address[1]} does not answer"
            self.answered = True  # reported; the next attempt follows at its time
        if now < self.next_at:
            return
        self._sendto(frames.register_foreign_device(self.ttl_s), self.address)
        self.sent_at, self.answered = now, False
        # Renewed at half the time-to-live (the BBMD adds 30 s of grace, J.5.2.3), sooner
        # after a failure.
        self.next_at = now + (self.ttl_s / 2 if self.registered else min(30.0, self.ttl_s / 2))

    def result(self, code: int) -> None:
        """The BBMD's BVLC-Result for the registration."""
        self.answered = True
        if code == frames.RESULT_SUCCESSFUL:
            if not self.registered:
                log.info("bacnet: registered as a foreign device with %s:%d", *self.address)
            self.registered = True
            self.detail = f"registered with {self.address[0]}:{self.address[1]}"
            self.next_at = self.sent_at + self.ttl_s / 2
        else:
            self.registered = False
            self.detail = f"BBMD {self.address[0]}:{self.address[1]} refused (0x{code:04x})"
            log.warning("bacnet: %s", self.detail)


def registration_for(
    config: BacnetConfig, old: Registration | None, sendto: SendTo
) -> Registration | None:
    """The registration ``config`` asks for: none without a BBMD, ``old`` when it is with
    the same BBMD and time-to-live, else a new one, sent at once."""
    if not config.bbmd_address:
        return None
    host, port = parse_host_port(config.bbmd_address, 47808)
    try:
        address = socket.gethostbyname(host)
    except OSError:
        unknown = Registration((host, port), config.bbmd_ttl_s, sendto)
        unknown.detail = f"BBMD {host}: unknown host"
        unknown.next_at = float("inf")  # never sent: only a new configuration retries
        return unknown
    if old is not None and old.address == (address, port) and old.ttl_s == config.bbmd_ttl_s:
        return old
    registration = Registration((address, port), config.bbmd_ttl_s, sendto)
    registration.register()
    return registration
