"""Tags and primitive values of ASHRAE 135 clause 20.2: encoding to bytes, and a reader
that decodes a service's parameters, refusing anything malformed with the reject reason
clause 18.8 gives for it."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from emsbox.gateways.bacnet.identifiers import RejectReason

# Application tag numbers (20.2.1.4).
NULL, BOOLEAN, UNSIGNED, SIGNED, REAL, DOUBLE, OCTETS, STRING, BITS, ENUMERATED = range(10)
DATE, TIME, OBJECT_ID = 10, 11, 12

_REAL = struct.Struct(">f")
_DOUBLE = struct.Struct(">d")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
CHARSET_UTF8 = 0  # 20.2.9: character set X'00' is ISO 10646 (UTF-8)
MAX_REAL = 3.4028234663852886e38


class DecodeError(Exception):
    """A service request is malformed; ``reason`` is the Reject reason to answer with."""

    def __init__(self, reason: RejectReason, message: str = "") -> None:
        super().__init__(message or reason.name.lower())
        self.reason = reason


# -- encoding -----------------------------------------------------------------------------


def tag_header(number: int, context: bool, length: int) -> bytes:
    """The initial octet(s) of a tag with ``length`` content octets (20.2.1)."""
    cls = 0x08 if context else 0x00
    if number <= 14:
        first, extra = number << 4 | cls, b""
    else:  # 20.2.1.2: tag numbers 15..254 follow in the next octet
        first, extra = 0xF0 | cls, bytes([number])
    if length <= 4:
        return bytes([first | length]) + extra
    if length <= 253:  # 20.2.1.3.1: extended length in one, three or five octets
        return bytes([first | 5]) + extra + bytes([length])
    if length <= 0xFFFF:
        return bytes([first | 5]) + extra + b"\xfe" + _U16.pack(length)
    return bytes([first | 5]) + extra + b"\xff" + _U32.pack(length)


def tagged(number: int, data: bytes, context: bool = False) -> bytes:
    """A primitive tag with its contents."""
    return tag_header(number, context, len(data)) + data


def opening(number: int) -> bytes:
    """A context opening tag (20.2.1.3.2)."""
    return bytes([number << 4 | 0x0E]) if number <= 14 else bytes([0xFE, number])


def closing(number: int) -> bytes:
    """A context closing tag (20.2.1.3.2)."""
    return bytes([number << 4 | 0x0F]) if number <= 14 else bytes([0xFF, number])


def unsigned_octets(value: int) -> bytes:
    """An unsigned integer in the fewest octets (20.2.4), zero as one octet."""
    if value < 0:
        raise ValueError("unsigned value below zero")
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def signed_octets(value: int) -> bytes:
    """A two's complement integer in the fewest octets (20.2.5)."""
    length = 1
    while not -(1 << (8 * length - 1)) <= value < 1 << (8 * length - 1):
        length += 1
    return value.to_bytes(length, "big", signed=True)


def app_null() -> bytes:
    """Application-tagged Null (20.2.2)."""
    return b"\x00"


def app_boolean(value: bool) -> bytes:
    """Application-tagged Boolean: the value is in the length field (20.2.3)."""
    return b"\x11" if value else b"\x10"


def app_unsigned(value: int) -> bytes:
    """Application-tagged Unsigned Integer (20.2.4)."""
    return tagged(UNSIGNED, unsigned_octets(value))


def app_signed(value: int) -> bytes:
    """Application-tagged Signed Integer (20.2.5)."""
    return tagged(SIGNED, signed_octets(value))


def real_octets(value: float) -> bytes:
    """IEEE 754 single precision, big endian; values beyond its range are clamped (a meter's
    counter never reaches them, but a REAL cannot say infinity by mistake)."""
    if math.isfinite(value) and abs(value) > MAX_REAL:
        value = math.copysign(MAX_REAL, value)
    return _REAL.pack(value)


def app_real(value: float) -> bytes:
    """Application-tagged Real (20.2.6)."""
    return b"\x44" + real_octets(value)


def app_double(value: float) -> bytes:
    """Application-tagged Double (20.2.7)."""
    return b"\x55\x08" + _DOUBLE.pack(value)


def app_octets(value: bytes) -> bytes:
    """Application-tagged Octet String (20.2.8)."""
    return tagged(OCTETS, value)


def app_string(value: str) -> bytes:
    """Application-tagged Character String in UTF-8 (20.2.9)."""
    return tagged(STRING, bytes([CHARSET_UTF8]) + value.encode("utf-8"))


def bit_string_octets(bits: list[bool] | tuple[bool, ...]) -> bytes:
    """A bit string: the count of unused bits, then the bits from the first octet's most
    significant bit on (20.2.10)."""
    count = len(bits)
    octets = bytearray((count + 7) // 8)
    for index, bit in enumerate(bits):
        if bit:
            octets[index // 8] |= 0x80 >> (index % 8)
    return bytes([len(octets) * 8 - count]) + bytes(octets)


def app_bit_string(bits: list[bool] | tuple[bool, ...]) -> bytes:
    """Application-tagged Bit String (20.2.10)."""
    return tagged(BITS, bit_string_octets(bits))


def app_enumerated(value: int) -> bytes:
    """Application-tagged Enumerated (20.2.11)."""
    return tagged(ENUMERATED, unsigned_octets(value))


def object_id_octets(object_type: int, instance: int) -> bytes:
    """An object identifier: 10 bits of type, 22 bits of instance (20.2.14)."""
    return _U32.pack((object_type & 0x3FF) << 22 | (instance & 0x3FFFFF))


def app_object_id(object_type: int, instance: int) -> bytes:
    """Application-tagged BACnetObjectIdentifier (20.2.14)."""
    return b"\xc4" + object_id_octets(object_type, instance)


def ctx_unsigned(number: int, value: int) -> bytes:
    """Context-tagged Unsigned Integer."""
    return tagged(number, unsigned_octets(value), context=True)


def ctx_enumerated(number: int, value: int) -> bytes:
    """Context-tagged Enumerated (the same octets as an unsigned)."""
    return tagged(number, unsigned_octets(value), context=True)


def ctx_boolean(number: int, value: bool) -> bytes:
    """Context-tagged Boolean: one content octet (20.2.3)."""
    return tagged(number, b"\x01" if value else b"\x00", context=True)


def ctx_object_id(number: int, object_type: int, instance: int) -> bytes:
    """Context-tagged BACnetObjectIdentifier."""
    return tagged(number, object_id_octets(object_type, instance), context=True)


def ctx_string(number: int, value: str) -> bytes:
    """Context-tagged Character String in UTF-8."""
    return tagged(number, bytes([CHARSET_UTF8]) + value.encode("utf-8"), context=True)


# -- decoding -----------------------------------------------------------------------------

PRIMITIVE, OPENING, CLOSING = 0, 1, 2


@dataclass(frozen=True)
class Tag:
    """One decoded tag: its number, class, form and (for a primitive) contents.

    For an application Boolean the value is in ``lvt`` and ``data`` is empty (20.2.3).
    """

    number: int
    context: bool
    form: int  # PRIMITIVE, OPENING or CLOSING
    lvt: int
    data: bytes


class Reader:
    """Reads tags one after another from a service's parameters."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = data
        self.offset = offset

    def at_end(self) -> bool:
        """Whether every octet was read."""
        return self.offset >= len(self.data)

    def _octet(self) -> int:
        if self.offset >= len(self.data):
            raise DecodeError(RejectReason.MISSING_REQUIRED_PARAMETER, "truncated tag")
        value = self.data[self.offset]
        self.offset += 1
        return value

    def _octets(self, count: int) -> bytes:
        end = self.offset + count
        if end > len(self.data):
            raise DecodeError(RejectReason.INVALID_TAG, "tag longer than the request")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def peek(self) -> Tag | None:
        """The next tag without consuming it, or None at the end."""
        if self.at_end():
            return None
        where = self.offset
        try:
            return self.read()
        finally:
            self.offset = where

    def read(self) -> Tag:
        """The next tag (20.2.1); DecodeError when it is malformed or truncated."""
        first = self._octet()
        number = first >> 4
        context = bool(first & 0x08)
        lvt = first & 0x07
        if number == 15:
            number = self._octet()
            if number == 255:  # 20.2.1.2: X'FF' is reserved
                raise DecodeError(RejectReason.INVALID_TAG, "reserved tag number")
        if context and lvt == 6:
            return Tag(number, True, OPENING, lvt, b"")
        if context and lvt == 7:
            return Tag(number, True, CLOSING, lvt, b"")
        if not context and lvt in (6, 7):
            raise DecodeError(RejectReason.INVALID_TAG, "application tag opening/closing")
        if not context and number == BOOLEAN:
            if lvt > 1:
                raise DecodeError(RejectReason.INVALID_TAG, "boolean value out of range")
            return Tag(number, False, PRIMITIVE, lvt, b"")
        length = lvt
        if lvt == 5:
            length = self._octet()
            if length == 254:
                length = int.from_bytes(self._octets(2), "big")
            elif length == 255:
                length = int.from_bytes(self._octets(4), "big")
        return Tag(number, context, PRIMITIVE, lvt, self._octets(length))

    # typed helpers: every one checks the tag it expects

    def context(self, number: int) -> bytes:
        """The contents of context tag ``number`` (required)."""
        tag = self.read()
        if not (tag.context and tag.form == PRIMITIVE and tag.number == number):
            raise DecodeError(RejectReason.INVALID_TAG, f"expected context tag {number}")
        return tag.data

    def has_context(self, number: int) -> bool:
        """Whether a primitive context tag ``number`` comes next."""
        tag = self.peek()
        return tag is not None and tag.context and tag.form == PRIMITIVE and tag.number == number

    def has_opening(self, number: int) -> bool:
        """Whether opening tag ``number`` comes next."""
        tag = self.peek()
        return tag is not None and tag.form == OPENING and tag.number == number

    def has_closing(self, number: int) -> bool:
        """Whether closing tag ``number`` comes next."""
        tag = self.peek()
        return tag is not None and tag.form == CLOSING and tag.number == number

    def expect_opening(self, number: int) -> None:
        """Consume opening tag ``number``."""
        tag = self.read()
        if tag.form != OPENING or tag.number != number:
            raise DecodeError(RejectReason.INVALID_TAG, f"expected opening tag {number}")

    def expect_closing(self, number: int) -> None:
        """Consume closing tag ``number``."""
        tag = self.read()
        if tag.form != CLOSING or tag.number != number:
            raise DecodeError(RejectReason.INVALID_TAG, f"expected closing tag {number}")

    def context_unsigned(self, number: int, limit: int = 0xFFFFFFFF) -> int:
        """A context-tagged Unsigned no larger than ``limit``."""
        return decode_unsigned(self.context(number), limit)

    def context_boolean(self, number: int) -> bool:
        """A context-tagged Boolean (one octet, 0 or 1)."""
        data = self.context(number)
        if len(data) != 1 or data[0] > 1:
            raise DecodeError(RejectReason.INVALID_PARAMETER_DATA_TYPE, "bad boolean")
        return data[0] == 1

    def context_object_id(self, number: int) -> tuple[int, int]:
        """A context-tagged object identifier as (type, instance)."""
        return decode_object_id(self.context(number))

    def context_string(self, number: int) -> str:
        """A context-tagged Character String (UTF-8 only)."""
        return decode_string(self.context(number))

    def skip_value(self, number: int) -> bytes:
        """Consume ``[number] { ... }`` and return the encoded contents between the tags."""
        self.expect_opening(number)
        start = self.offset
        depth = 0
        while True:
            where = self.offset
            tag = self.read()
            if tag.form == OPENING:
                depth += 1
            elif tag.form == CLOSING:
                if depth == 0:
                    if tag.number != number:
                        raise DecodeError(RejectReason.INVALID_TAG, "mismatched closing tag")
                    return self.data[start:where]
                depth -= 1


def decode_unsigned(data: bytes, limit: int = 0xFFFFFFFF) -> int:
    """An Unsigned's contents (1..4 octets here; longer ones are out of every range we use)."""
    if not data:
        raise DecodeError(RejectReason.INVALID_PARAMETER_DATA_TYPE, "empty unsigned")
    if len(data) > 4:
        raise DecodeError(RejectReason.PARAMETER_OUT_OF_RANGE, "unsigned too long")
    value = int.from_bytes(data, "big")
    if value > limit:
        raise DecodeError(RejectReason.PARAMETER_OUT_OF_RANGE, "unsigned out of range")
    return value


def decode_object_id(data: bytes) -> tuple[int, int]:
    """An object identifier's four octets as (type, instance)."""
    if len(data) != 4:
        raise DecodeError(RejectReason.INVALID_PARAMETER_DATA_TYPE, "object id not 4 octets")
    value = int.from_bytes(data, "big")
    return value >> 22, value & 0x3FFFFF


def decode_string(data: bytes) -> str:
    """A Character String's contents; only UTF-8 (X'00') is accepted."""
    if not data or data[0] != CHARSET_UTF8:
        raise DecodeError(RejectReason.INVALID_PARAMETER_DATA_TYPE, "unsupported charset")
    try:
        return data[1:].decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(RejectReason.INVALID_PARAMETER_DATA_TYPE, "bad UTF-8") from None


def decode_real(data: bytes) -> float:
    """A Real's four octets."""
    if len(data) != 4:
        raise DecodeError(RejectReason.INVALID_PARAMETER_DATA_TYPE, "real not 4 octets")
    return float(_REAL.unpack(data)[0])
