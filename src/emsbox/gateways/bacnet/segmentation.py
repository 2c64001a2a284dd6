"""Sending a ComplexACK in segments (ASHRAE 135 clauses 5.2-5.4): cutting the answer to the
client's size, the window the client grants, SegmentACKs, timeouts and retries. Pure: the
server sends what these methods return and calls ``timed_out`` when a timer fires."""

from __future__ import annotations

from dataclasses import dataclass, field

from emsbox.gateways.bacnet.frames import (
    COMPLEX_ACK_HEADER,
    MAX_APDU,
    SEGMENTED_ACK_HEADER,
    complex_ack,
    complex_ack_segment,
)
from emsbox.gateways.bacnet.identifiers import AbortReason

PROPOSED_WINDOW = 16  # 5.3: segments this device sends before it waits for a SegmentACK
MAX_WINDOW = 127  # 20.1.2.8: window sizes are 1..127
MAX_SEGMENTS = 255  # a longer answer is refused (buffer-overflow): far beyond any answer here
MAX_ANSWER = 256 * 1024  # octets of one answer, whatever the client accepts (buffer-overflow)


class SegmentationError(Exception):
    """The answer does not fit what the client accepts: the Abort reason to send."""

    def __init__(self, reason: AbortReason) -> None:
        super().__init__(reason.name.lower())
        self.reason = reason


def answer_limit(
    client_max_apdu: int, accepts_segments: bool, client_max_segments: int | None
) -> tuple[int, AbortReason]:
    """The most octets of service parameters an answer may have for this client, and the
    Abort reason of a longer one: what one ComplexACK holds when the client accepts no
    segments (segmentation-not-supported, 5.4.5.3), else what the segments it accepts hold,
    at most MAX_SEGMENTS of them and MAX_ANSWER octets (buffer-overflow). An answer is
    checked against it while it is built, so a request asking for too much costs no memory."""
    size = min(client_max_apdu, MAX_APDU)
    if not accepts_segments:
        return size - COMPLEX_ACK_HEADER, AbortReason.SEGMENTATION_NOT_SUPPORTED
    segments = MAX_SEGMENTS if client_max_segments is None else client_max_segments
    held = min(segments, MAX_SEGMENTS) * (size - SEGMENTED_ACK_HEADER)
    return min(held, MAX_ANSWER), AbortReason.BUFFER_OVERFLOW


def plan(
    data: bytes,
    client_max_apdu: int,
    accepts_segments: bool,
    client_max_segments: int | None,
) -> list[bytes] | None:
    """The segments of an answer (None when it fits one unsegmented ComplexACK).

    Every APDU, header included, stays within the smaller of the client's and B/IP's maximum
    APDU (5.2.1). Raises SegmentationError when it cannot: the client accepts no segments
    (segmentation-not-supported, 5.4.5.3) or fewer than needed (buffer-overflow).
    """
    size = min(client_max_apdu, MAX_APDU)
    if len(data) + COMPLEX_ACK_HEADER <= size:
        return None
    if not accepts_segments:
        raise SegmentationError(AbortReason.SEGMENTATION_NOT_SUPPORTED)
    if len(data) > MAX_ANSWER:
        raise SegmentationError(AbortReason.BUFFER_OVERFLOW)
    chunk = size - SEGMENTED_ACK_HEADER
    pieces = [data[at : at + chunk] for at in range(0, len(data), chunk)]
    limit = MAX_SEGMENTS if client_max_segments is None else client_max_segments
    if len(pieces) > min(limit, MAX_SEGMENTS):
        raise SegmentationError(AbortReason.BUFFER_OVERFLOW)
    return pieces


def unsegmented(invoke_id: int, service: int, data: bytes) -> bytes:
    """The single ComplexACK of an answer that fits."""
    return complex_ack(invoke_id, service, data)


@dataclass
class Transmission:
    """One segmented answer on its way: the segments and how far the client acknowledged.

    The first segment goes alone; the client's SegmentACK sets the window (5.4.4.2), then up
    to a window of segments go before each SegmentACK. A timeout resends the window; after
    ``retries`` of them the transaction ends (5.4.4.3: the server returns to IDLE).
    """

    invoke_id: int
    service: int
    pieces: list[bytes]
    retries: int
    base: int = 0  # first segment not acknowledged
    sent: int = 1  # segments sent from base on
    window: int = 1
    fresh: int = 1  # first segment never sent
    attempts: int = 0
    done: bool = False
    _cache: dict[int, bytes] = field(default_factory=dict)

    def segment(self, index: int) -> bytes:
        """The APDU of segment ``index`` (0-based; its sequence number is index mod 256)."""
        apdu = self._cache.get(index)
        if apdu is None:
            more = index < len(self.pieces) - 1
            apdu = complex_ack_segment(
                self.invoke_id,
                self.service,
                self.pieces[index],
                sequence=index,
                window=PROPOSED_WINDOW,
                more=more,
            )
            self._cache[index] = apdu
        return apdu

    def first(self) -> list[bytes]:
        """What goes first: segment 0 alone."""
        self.base, self.sent, self.fresh = 0, 1, 1
        return [self.segment(0)]

    def _window_out(self, start: int) -> list[bytes]:
        end = min(self.base + self.window, len(self.pieces))
        self.sent = end - self.base
        self.fresh = max(self.fresh, end)
        return [self.segment(k) for k in range(start, end)]

    def acknowledged(
        self, sequence: int, window: int, negative: bool = False
    ) -> list[bytes] | None:
        """A SegmentACK: everything up to ``sequence`` came (5.4.4.2). Returns the segments
        to send now: the rest of the new window, or, for a negative ACK, the whole window
        again; empty when done; None when the ACK is stale (it changes nothing, not even
        the timer: a client repeating an old ACK cannot keep the answer alive)."""
        if self.done:
            return None
        match = None
        for k in range(self.base, self.base + self.sent):
            if k % 256 == sequence:
                match = k
        if match is None:
            # Not within the window: a duplicate or stale ACK, ignored (5.4.4.2 "DuplicateACK").
            return None
        self.window = max(1, min(window, MAX_WINDOW, PROPOSED_WINDOW))
        for k in range(self.base, match + 1):
            self._cache.pop(k, None)  # acknowledged: never sent again
        self.base = match + 1
        self.attempts = 0
        if self.base >= len(self.pieces):
            self.done = True
            return []
        # Segments already on their way are not sent twice, unless the client says (NAK)
        # that what followed ``sequence`` was lost.
        return self._window_out(self.base if negative else max(self.base, self.fresh))

    def timed_out(self) -> list[bytes]:
        """The segment timer fired: resend the window, or give up (``done``) after the retries."""
        if self.done:
            return []
        self.attempts += 1
        if self.attempts > self.retries:
            self.done = True
            return []
        if self.base == 0 and self.sent == 1:
            return self.first()
        return self._window_out(self.base)
