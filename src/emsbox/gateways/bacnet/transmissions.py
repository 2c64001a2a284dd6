"""Segmented answers in flight (clause 5.4): each one's timer, its SegmentACKs and aborts."""

from __future__ import annotations

import asyncio

from emsbox.gateways.bacnet.database import APDU_SEGMENT_TIMEOUT_MS
from emsbox.gateways.bacnet.frames import SegmentAck
from emsbox.gateways.bacnet.peer import Peer, Send
from emsbox.gateways.bacnet.segmentation import Transmission


class Transmissions:
    """The segmented answers being sent, keyed by peer and invoke id."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._active: dict[tuple[Peer, int], tuple[Transmission, asyncio.TimerHandle]] = {}

    def __contains__(self, key: tuple[Peer, int]) -> bool:
        return key in self._active

    def start(self, peer: Peer, transmission: Transmission) -> None:
        """Send the first window of an answer and wait for its SegmentACK."""
        for apdu in transmission.first():
            self._send(peer, apdu)
        self._arm(peer, transmission)

    def acknowledged(self, peer: Peer, ack: SegmentAck) -> None:
        """A client's SegmentACK: the next window, a resend, or the end."""
        entry = self._active.get((peer, ack.invoke_id))
        if entry is None:
            return  # an ACK for nothing: dropped
        transmission, timer = entry
        for apdu in transmission.acknowledged(ack.sequence_number, ack.window, ack.negative):
            self._send(peer, apdu)
        if transmission.done:
            timer.cancel()
            del self._active[(peer, ack.invoke_id)]
        else:
            self._arm(peer, transmission)

    def abort(self, peer: Peer, invoke_id: int) -> None:
        """The client aborts the transaction of a segmented answer (5.4.4)."""
        entry = self._active.pop((peer, invoke_id), None)
        if entry is not None:
            entry[1].cancel()

    def close(self) -> None:
        """Cancel every timer and forget the answers."""
        for _, timer in self._active.values():
            timer.cancel()
        self._active.clear()

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
        for apdu in transmission.timed_out():
            self._send(peer, apdu)
        if transmission.done:
            del self._active[key]
        else:
            self._arm(peer, transmission)
