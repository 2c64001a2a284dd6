"""The foreign-device registration with a BBMD (Annex J.5.2): sent, renewed, and its result."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

from emsbox.gateways.bacnet import frames
from emsbox.gateways.bacnet.config import BacnetConfig, parse_host_port

log = logging.getLogger(__name__)

BBMD_ANSWER_S = 5.0  # a registration unanswered for this long counts as failed
RETRY_S = 15.0  # the next attempt after a failed one (unanswered or refused)
GRACE_S = 30.0  # J.5.2.3: the BBMD keeps an entry this long past its time-to-live
RESOLVE_TIMEOUT_S = 5.0  # the BBMD's host name is looked up for at most this long

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
        self.success_at = 0.0  # when the last registration the BBMD accepted was sent
        self._sendto = sendto

    def _where(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def register(self) -> None:
        """Send (or renew) the registration when it is due (J.5.2.1).

        A renewal goes at half the time-to-live; an unanswered or refused one is tried again
        RETRY_S later. The device counts as registered until the BBMD's entry of the last
        accepted registration runs out (time-to-live plus the BBMD's 30 s of grace, J.5.2.3),
        not from the first lost answer on.
        """
        now = time.monotonic()
        if not self.answered and now - self.sent_at > BBMD_ANSWER_S:
            self.answered = True  # reported; the next attempt follows soon
            self.next_at = min(self.next_at, self.sent_at + RETRY_S)
            if self.registered:
                self.detail = f"registered with {self._where()}; the renewal is unanswered"
            else:
                self.detail = f"BBMD {self._where()} does not answer"
        if self.registered and now > self.success_at + self.ttl_s + GRACE_S:
            self.registered = False
            self.detail = f"BBMD {self._where()} does not answer; the registration ran out"
            log.warning("bacnet: %s", self.detail)
        if now < self.next_at:
            return
        self._sendto(frames.register_foreign_device(self.ttl_s), self.address)
        self.sent_at, self.answered = now, False
        self.next_at = now + (self.ttl_s / 2 if self.registered else RETRY_S)

    def result(self, code: int) -> bool:
        """The BBMD's BVLC-Result for the registration; True when it makes the device newly
        registered."""
        self.answered = True
        if code == frames.RESULT_SUCCESSFUL:
            new = not self.registered
            if new:
                log.info("bacnet: registered as a foreign device with %s", self._where())
            self.registered = True
            self.detail = f"registered with {self._where()}"
            self.success_at = self.sent_at
            self.next_at = self.sent_at + self.ttl_s / 2
            return new
        self.registered = False
        self.detail = f"BBMD {self._where()} refused (0x{code:04x})"
        self.next_at = min(self.next_at, self.sent_at + RETRY_S)
        log.warning("bacnet: %s", self.detail)
        return False


async def resolve(host: str) -> str | None:
    """The IPv4 address of ``host``, looked up without blocking the event loop; None when
    it cannot be found in time."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_DGRAM),
            RESOLVE_TIMEOUT_S,
        )
    except (OSError, TimeoutError):
        return None
    for *_, sockaddr in infos:
        return str(sockaddr[0])
    return None


async def registration_for(
    config: BacnetConfig, old: Registration | None, sendto: SendTo
) -> Registration | None:
    """The registration ``config`` asks for: none without a BBMD, ``old`` when it is with
    the same BBMD and time-to-live, else a new one, sent at once."""
    if not config.bbmd_address:
        return None
    host, port = parse_host_port(config.bbmd_address, 47808)
    address = await resolve(host)
    if address is None:
        unknown = Registration((host, port), config.bbmd_ttl_s, sendto)
        unknown.detail = f"BBMD {host}: unknown host"
        unknown.next_at = float("inf")  # never sent: only a new configuration retries
        return unknown
    if old is not None and old.address == (address, port) and old.ttl_s == config.bbmd_ttl_s:
        return old
    registration = Registration((address, port), config.bbmd_ttl_s, sendto)
    registration.register()
    return registration
