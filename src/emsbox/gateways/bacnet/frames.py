"""The three layers around a service: BVLC (ASHRAE 135 Annex J), NPDU (clause 6) and the APDU
headers (clause 20.1). Pure functions: bytes in, dataclasses out, and back."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from emsbox.gateways.bacnet.encoding import app_enumerated

BVLC_TYPE = 0x81  # J.2: BACnet/IP


class Bvlc:
    """BVLC function codes (J.2)."""

    RESULT = 0x00
    WRITE_BDT = 0x01
    READ_BDT = 0x02
    READ_BDT_ACK = 0x03
    FORWARDED_NPDU = 0x04
    REGISTER_FOREIGN_DEVICE = 0x05
    READ_FDT = 0x06
    READ_FDT_ACK = 0x07
    DELETE_FDT_ENTRY = 0x08
    DISTRIBUTE_BROADCAST = 0x09
    ORIGINAL_UNICAST = 0x0A
    ORIGINAL_BROADCAST = 0x0B


# J.2.1.1: the NAK a BBMD function answers with when this node is no BBMD.
BBMD_NAKS = {
    Bvlc.WRITE_BDT: 0x0010,
    Bvlc.READ_BDT: 0x0020,
    Bvlc.REGISTER_FOREIGN_DEVICE: 0x0030,
    Bvlc.READ_FDT: 0x0040,
    Bvlc.DELETE_FDT_ENTRY: 0x0050,
    Bvlc.DISTRIBUTE_BROADCAST: 0x0060,
}
RESULT_SUCCESSFUL = 0x0000


class FrameError(Exception):
    """A datagram is malformed below the APDU: it is dropped (no answer is possible)."""


@dataclass(frozen=True)
class BvlcFrame:
    """A decoded BVLL message: the function, its payload and, for a Forwarded-NPDU, the
    B/IP address of the device that sent the original (J.2.9)."""

    function: int
    payload: bytes
    origin: tuple[str, int] | None = None


def parse_bvlc(data: bytes) -> BvlcFrame:
    """Split a datagram's BVLC header (J.2): type, function, length of the whole message."""
    if len(data) < 4 or data[0] != BVLC_TYPE:
        raise FrameError("not a BACnet/IP message")
    function = data[1]
    length = int.from_bytes(data[2:4], "big")
    if length != len(data):
        raise FrameError(f"BVLC length {length} for a datagram of {len(data)}")
    if function == Bvlc.FORWARDED_NPDU:
        if len(data) < 10:
            raise FrameError("Forwarded-NPDU without its address")
        host = ".".join(str(b) for b in data[4:8])
        port = int.from_bytes(data[8:10], "big")
        return BvlcFrame(function, data[10:], (host, port))
    return BvlcFrame(function, data[4:])


def bvlc(function: int, payload: bytes) -> bytes:
    """A BVLL message (J.2): type, function, two octets of length, payload."""
    return bytes([BVLC_TYPE, function]) + struct.pack(">H", 4 + len(payload)) + payload


def bvlc_result(code: int) -> bytes:
    """A BVLC-Result (J.2.1)."""
    return bvlc(Bvlc.RESULT, struct.pack(">H", code))


def register_foreign_device(ttl_s: int) -> bytes:
    """A Register-Foreign-Device request (J.2.6) with its time-to-live in seconds."""
    return bvlc(Bvlc.REGISTER_FOREIGN_DEVICE, struct.pack(">H", ttl_s))


# -- NPDU ---------------------------------------------------------------------------------

NPDU_VERSION = 0x01
_NETWORK_MESSAGE = 0x80
_DNET = 0x20
_SNET = 0x08
_EXPECTING_REPLY = 0x04
GLOBAL_BROADCAST = 0xFFFF


@dataclass(frozen=True)
class Npdu:
    """A decoded NPDU (6.2): where it goes, where it came from, and its APDU."""

    network_message: bool
    expecting_reply: bool
    priority: int
    dnet: int | None
    dadr: bytes
    snet: int | None
    sadr: bytes
    apdu: bytes


def parse_npdu(data: bytes) -> Npdu:
    """Decode the NPCI of clause 6.2 and return the rest as the APDU."""
    if len(data) < 2:
        raise FrameError("NPDU shorter than its header")
    if data[0] != NPDU_VERSION:
        raise FrameError(f"NPDU version {data[0]}")
    control = data[1]
    if control & 0x50:  # 6.2.2: bits 6 and 4 are reserved and shall be zero
        raise FrameError("reserved NPCI bits set")
    at = 2
    dnet = snet = None
    dadr = sadr = b""
    try:
        if control & _DNET:
            dnet = int.from_bytes(data[at : at + 2], "big")
            dlen = data[at + 2]
            dadr = data[at + 3 : at + 3 + dlen]
            if len(dadr) != dlen:
                raise FrameError("truncated DADR")
            at += 3 + dlen
        if control & _SNET:
            snet = int.from_bytes(data[at : at + 2], "big")
            slen = data[at + 2]
            sadr = data[at + 3 : at + 3 + slen]
            # 6.2.2.1: SNET 0xFFFF and SLEN 0 are invalid
            if len(sadr) != slen or slen == 0 or snet in (0, GLOBAL_BROADCAST):
                raise FrameError("bad source network address")
            at += 3 + slen
        if control & _DNET:
            at += 1  # hop count
        if at > len(data):
            raise FrameError("truncated NPCI")
    except IndexError:
        raise FrameError("truncated NPCI") from None
    return Npdu(
        network_message=bool(control & _NETWORK_MESSAGE),
        expecting_reply=bool(control & _EXPECTING_REPLY),
        priority=control & 0x03,
        dnet=dnet,
        dadr=dadr,
        snet=snet,
        sadr=sadr,
        apdu=data[at:],
    )


def npdu_header(
    expecting_reply: bool = False, dnet: int | None = None, dadr: bytes = b"", priority: int = 0
) -> bytes:
    """The NPCI of an answer; routed back through DNET/DADR when the request came with a
    source network (6.2.2), with the full hop count 255."""
    control = priority & 0x03
    if expecting_reply:
        control |= _EXPECTING_REPLY
    if dnet is None:
        return bytes([NPDU_VERSION, control])
    return (
        bytes([NPDU_VERSION, control | _DNET])
        + struct.pack(">HB", dnet, len(dadr))
        + dadr
        + b"\xff"
    )


# -- APDU headers -------------------------------------------------------------------------


class PduType:
    """APDU types (20.1.1)."""

    CONFIRMED = 0
    UNCONFIRMED = 1
    SIMPLE_ACK = 2
    COMPLEX_ACK = 3
    SEGMENT_ACK = 4
    ERROR = 5
    REJECT = 6
    ABORT = 7


# 20.1.2.5: max-APDU-length-accepted codes, and 20.1.2.4: max-segments-accepted codes.
MAX_APDU_BY_CODE = {0: 50, 1: 128, 2: 206, 3: 480, 4: 1024, 5: 1476}
MAX_SEGMENTS_BY_CODE = {0: None, 1: 2, 2: 4, 3: 8, 4: 16, 5: 32, 6: 64, 7: None}
MAX_APDU = 1476  # B/IP's largest APDU (Annex J, table 6-1)
MAX_APDU_CODE = 5


@dataclass(frozen=True)
class ConfirmedRequest:
    """A BACnet-Confirmed-Request-PDU's header (20.1.2) and its service parameters."""

    invoke_id: int
    service: int
    segmented: bool
    more_follows: bool
    segmented_response_accepted: bool
    max_segments: int | None  # None: unspecified or more than 64
    max_apdu: int
    sequence_number: int
    proposed_window: int
    body: bytes


@dataclass(frozen=True)
class UnconfirmedRequest:
    """A BACnet-Unconfirmed-Request-PDU (20.1.3)."""

    service: int
    body: bytes


@dataclass(frozen=True)
class SegmentAck:
    """A BACnet-SegmentACK-PDU (20.1.6)."""

    negative: bool
    from_server: bool
    invoke_id: int
    sequence_number: int
    window: int


@dataclass(frozen=True)
class Reply:
    """A SimpleACK, ComplexACK, Error, Reject or Abort to a request this device sent."""

    pdu_type: int
    invoke_id: int
    from_server: bool = False


Apdu = ConfirmedRequest | UnconfirmedRequest | SegmentAck | Reply


class ApduError(Exception):
    """An APDU header too short or wrong for its type; answered with a Reject or Abort when
    its invoke id could be read, else dropped."""

    def __init__(self, message: str, invoke_id: int | None = None) -> None:
        super().__init__(message)
        self.invoke_id = invoke_id


def parse_apdu(data: bytes) -> Apdu:
    """Decode an APDU's fixed header (20.1)."""
    if not data:
        raise ApduError("empty APDU")
    pdu_type = data[0] >> 4
    if pdu_type == PduType.CONFIRMED:
        if len(data) < 4:
            raise ApduError(
                "confirmed request header truncated", data[2] if len(data) > 2 else None
            )
        segmented = bool(data[0] & 0x08)
        head = 6 if segmented else 4
        if len(data) < head:
            raise ApduError("segmented request header truncated", data[2])
        return ConfirmedRequest(
            invoke_id=data[2],
            service=data[head - 1],
            segmented=segmented,
            more_follows=bool(data[0] & 0x04),
            segmented_response_accepted=bool(data[0] & 0x02),
            max_segments=MAX_SEGMENTS_BY_CODE[(data[1] >> 4) & 0x07],
            # Codes 6..15 are reserved (20.1.2.5): take them as the smallest size.
            max_apdu=MAX_APDU_BY_CODE.get(data[1] & 0x0F, 50),
            sequence_number=data[3] if segmented else 0,
            proposed_window=data[4] if segmented else 0,
            body=data[head:],
        )
    if pdu_type == PduType.UNCONFIRMED:
        if len(data) < 2:
            raise ApduError("unconfirmed request without a service")
        return UnconfirmedRequest(data[1], data[2:])
    if pdu_type == PduType.SEGMENT_ACK:
        if len(data) < 4:
            raise ApduError("SegmentACK truncated")
        return SegmentAck(bool(data[0] & 0x02), bool(data[0] & 0x01), data[1], data[2], data[3])
    if pdu_type in (PduType.SIMPLE_ACK, PduType.ERROR, PduType.REJECT, PduType.ABORT):
        if len(data) < 2:
            raise ApduError("reply truncated")
        return Reply(pdu_type, data[1], bool(data[0] & 0x01))
    if pdu_type == PduType.COMPLEX_ACK:
        if len(data) < 3:
            raise ApduError("complex ack truncated")
        return Reply(pdu_type, data[1])
    raise ApduError(f"unknown APDU type {pdu_type}")


def simple_ack(invoke_id: int, service: int) -> bytes:
    """A BACnet-SimpleACK-PDU (20.1.4)."""
    return bytes([PduType.SIMPLE_ACK << 4, invoke_id, service])


def complex_ack(invoke_id: int, service: int, data: bytes) -> bytes:
    """An unsegmented BACnet-ComplexACK-PDU (20.1.5)."""
    return bytes([PduType.COMPLEX_ACK << 4, invoke_id, service]) + data


COMPLEX_ACK_HEADER = 3
SEGMENTED_ACK_HEADER = 5


def complex_ack_segment(
    invoke_id: int, service: int, data: bytes, *, sequence: int, window: int, more: bool
) -> bytes:
    """One segment of a BACnet-ComplexACK-PDU (20.1.5): SEG set, MOR while more follow."""
    first = PduType.COMPLEX_ACK << 4 | 0x08 | (0x04 if more else 0)
    return bytes([first, invoke_id, sequence & 0xFF, window, service]) + data


def error_pdu(invoke_id: int, service: int, error_class: int, error_code: int) -> bytes:
    """A BACnet-Error-PDU (20.1.7) with the plain Error of clause 21: two enumerations."""
    return (
        bytes([PduType.ERROR << 4, invoke_id, service])
        + app_enumerated(error_class)
        + app_enumerated(error_code)
    )


def reject_pdu(invoke_id: int, reason: int) -> bytes:
    """A BACnet-Reject-PDU (20.1.8)."""
    return bytes([PduType.REJECT << 4, invoke_id, reason])


def abort_pdu(invoke_id: int, reason: int) -> bytes:
    """A BACnet-Abort-PDU sent by the server (20.1.9: SRV = 1)."""
    return bytes([PduType.ABORT << 4 | 0x01, invoke_id, reason])


def abort_as_client(invoke_id: int, reason: int) -> bytes:
    """A BACnet-Abort-PDU sent by this device as the client of a transaction (SRV = 0)."""
    return bytes([PduType.ABORT << 4, invoke_id, reason])


def unconfirmed(service: int, data: bytes) -> bytes:
    """A BACnet-Unconfirmed-Request-PDU (20.1.3)."""
    return bytes([PduType.UNCONFIRMED << 4, service]) + data


def confirmed(invoke_id: int, service: int, data: bytes) -> bytes:
    """A BACnet-Confirmed-Request-PDU this device sends (a confirmed COV notification): not
    segmented, accepting no segments, answers up to 1476 octets (20.1.2)."""
    return bytes([PduType.CONFIRMED << 4, MAX_APDU_CODE, invoke_id, service]) + data
