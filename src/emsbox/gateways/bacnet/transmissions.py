"""Segmented answers in flight (clause 5.4): each one's timer, its SegmentACKs and aborts.

They are bounded: at most MAX_TRANSMISSIONS at once, MAX_PER_PEER of them to one peer (more
are refused with Abort out-of-resources), each alive at most MAX_LIFETIME_S.
"""

from __future__ import annotations

import asyncio
import time

from emsbox.gateways.bacnet.database import APDU_SEGMENT_TIMEOUT_MS
from emsbox.gateways.bacnet.frames import SegmentAck
from emsbox.gateways.bacnet.peer import Peer, Send
from emsbox.gateways.bacnet.segmentation import Transmission

MAX_TRANSMISSIONS = 64  # segmented answers in flight at once
MAX_PER_PEER = 4  # of them to one peer (address and route)
MAX_LIFETIME_S = 60.0  # a transmission still unfinished after this long is given up


class Transmissions:
    """The segmented answers being sent, keyed by peer and invoke id."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._active: dict[tuple[Peer, int], tuple[Transmission, asyncio.TimerHandle]] = {}
        self._started: dict[tuple[Peer, int], float] = {}

    def __contains__(self, key: tuple[Peer, int]) -> bool:
        return key in self._active

    def __len__(self) -> int:
        return len(self._active)

    def full(self, peer: Peer) -> bool:
        """Whether one more answer to ``peer`` would exceed a limit."""
        if len(self._active) >= MAX_TRANSMISSIONS:
            return True
        return sum(1 for p, _ in self._active if p == peer) >= MAX_PER_PEER

    def start(self, peer: Peer, transmission: Transmission) -> None:
        """Send the first window of an answer and wait for its SegmentACK."""
        self._started[(peer, transmission.invoke_id)] = time.monotonic()
        for apdu in transmission.first():
            self._send_segment(peer, apdu)
        self._arm(peer, transmission)

    def acknowledged(self, peer: Peer, ack: SegmentAck) -> bool:
        """A client's SegmentACK: the next window, a resend, or the end. False when it is
        for no answer in flight."""
        key = (peer, ack.invoke_id)
        entry = self._active.get(key)
        if entry is None:
            return False
        transmission = entry[0]
        out = transmission.acknowledged(ack.sequence_number, ack.window, ack.negative)
        if out is None:
            return True  # a duplicate or stale ACK: ignored, the timer runs on
        if self._expired(key):
            self._end(key)
            return True
        for apdu in out:
            self._send_segment(peer, apdu)
        if transmission.done:
            self._end(key)
        else:
            self._arm(peer, transmission)
        return True

    def abort(self, peer: Peer, invoke_id: int) -> None:
        """The client aborts the transaction of a segmented answer (5.4.4)."""
        self._end((peer, invoke_id))

    def close(self) -> None:
        """Cancel every timer and forget the answers."""
        for _, timer in self._active.values():
            timer.cancel()
        self._active.clear()
        self._started.clear()

    def _send_segment(self, peer: Peer, apdu: bytes) -> None:
        # 6.2.2: a segment of a segmented ComplexACK expects a reply (its SegmentACK).
        self._send(peer, apdu, expecting_reply=True)

    def _expired(self, key: tuple[Peer, int]) -> bool:
        return time.monotonic() - self._started.get(key, 0.0) > MAX_LIFETIME_S

    def _end(self, key: tuple[Peer, int]) -> None:
        entry = self._active.pop(key, None)
        self._started.pop(key, None)
        if entry is not None:
            entry[1].cancel()

    def _arm(self, peer: Peer, transmission: Transmission) -> None:
        loop = asyncio.get_running_loop()
        key = (peer, transmission.invoke_id)
        old = self._active.get(key)
        if old is not None:
            old[1].cancel()
        timer = loop.call_later(APDU_SEGMENT_TIMEOUT_MS / 1000, self._timeout, peer, transmission)
        self._active[key] = (transmission, timer)

    def _timeout(self, peer: Peer, transmission: Transmission) -> None:
        key = (peer, transmission.invoke_id)
        if self._active.get(key, (None,))[0] is not transmission:
            return
        if self._expired(key):
            self._end(key)
            return
        for apdu in transmission.timed_out():
            self._send_segment(peer, apdu)
        if transmission.done:
            self._end(key)
        else:
            self._arm(peer, transmission)
