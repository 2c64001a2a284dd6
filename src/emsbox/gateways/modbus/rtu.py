"""Modbus RTU framing, without I/O: the CRC, and requests cut from what the line delivered.

Follows the Modbus over Serial Line Specification V1.02: a frame is the slave address, the PDU
and a CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF, low byte first); frames are apart
by a silence of 3.5 characters (1.75 ms above 19200 baud); address 0 is a broadcast, which is
never answered; a frame with a wrong CRC is dropped without an answer.
"""

from __future__ import annotations

from dataclasses import dataclass

BROADCAST = 0
MIN_FRAME = 4  # address, function, CRC
MAX_FRAME = 256

# Requests whose length follows from their first bytes: function -> fixed length, or the
# index of a byte count and the bytes before and after the counted ones.
_FIXED = {1: 8, 2: 8, 3: 8, 4: 8, 5: 8, 6: 8}
_COUNTED = {15: 6, 16: 6}


def crc16(data: bytes) -> int:
    """The Modbus CRC-16 of ``data``."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    """``frame`` followed by its CRC, low byte first."""
    return frame + crc16(frame).to_bytes(2, "little")


def crc_ok(frame: bytes) -> bool:
    """Whether the last two bytes of ``frame`` are the CRC of the rest."""
    return len(frame) >= MIN_FRAME and crc16(frame[:-2]).to_bytes(2, "little") == frame[-2:]


def silence_s(baud_rate: int) -> float:
    """The 3.5-character silence that ends a frame (11 bits a character), in seconds."""
    return 0.00175 if baud_rate > 19200 else 3.5 * 11 / baud_rate


@dataclass(frozen=True)
class RtuFrame:
    """A request with a good CRC: the slave address and the PDU."""

    address: int
    pdu: bytes


def _expected_length(burst: bytes) -> int | None:
    function = burst[1]
    if function in _FIXED:
        return _FIXED[function]
    if function in _COUNTED and len(burst) > _COUNTED[function]:
        return _COUNTED[function] + 1 + burst[_COUNTED[function]] + 2
    return None


def split_requests(burst: bytes) -> tuple[list[RtuFrame], int]:
    """The requests in what arrived between two silences, and how many frames were dropped
    (wrong CRC, too short). Frames sent back to back without a silence are told apart by the
    lengths their function codes imply; a frame of another function must be alone."""
    frames: list[RtuFrame] = []
    dropped = 0
    rest = burst
    while rest:
        if len(rest) < MIN_FRAME:
            dropped += 1
            break
        length = _expected_length(rest)
        if length is not None and length <= len(rest) and crc_ok(rest[:length]):
            frame, rest = rest[:length], rest[length:]
        elif crc_ok(rest) and len(rest) <= MAX_FRAME:
            frame, rest = rest, b""
        else:
            dropped += 1
            break
        frames.append(RtuFrame(frame[0], frame[1:-2]))
    return frames, dropped


def response(address: int, pdu: bytes) -> bytes:
    """The RTU frame answering from ``address`` with ``pdu``."""
    return with_crc(bytes((address,)) + pdu)
