"""Modbus application protocol and TCP framing, without I/O: bytes in, bytes out.

Follows the Modbus Application Protocol Specification V1.1b3 (function codes, exception codes,
quantity limits) and the Modbus Messaging on TCP/IP Implementation Guide V1.0b (the MBAP
header: transaction id, protocol id 0, length of unit id plus PDU, unit id).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

MBAP = struct.Struct(">HHHB")  # transaction id, protocol id, length, unit id
MBAP_SIZE = MBAP.size
# The length field counts the unit id and the PDU; a PDU is 1…253 bytes.
MIN_LENGTH = 2
MAX_LENGTH = 254
MAX_READ_REGISTERS = 125  # FC 3 and 4: the spec's limit, 250 bytes of data in one PDU
REGISTER_SPACE = 0x10000


class Function(IntEnum):
    """The function codes the gateway answers (others get exception 01)."""

    READ_HOLDING_REGISTERS = 3
    READ_INPUT_REGISTERS = 4
    WRITE_SINGLE_REGISTER = 6  # only with writes enabled, only the command registers
    WRITE_MULTIPLE_REGISTERS = 16


WRITES = (Function.WRITE_SINGLE_REGISTER, Function.WRITE_MULTIPLE_REGISTERS)
MAX_WRITE_REGISTERS = 123  # FC 16: the spec's limit


class ExceptionCode(IntEnum):
    """Modbus exception codes (the spec's section 7)."""

    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    SERVER_DEVICE_FAILURE = 0x04
    GATEWAY_TARGET_FAILED = 0x0B


class FramingError(Exception):
    """A TCP stream that cannot be read as Modbus frames any further: the connection must go."""


@dataclass(frozen=True)
class Frame:
    """One request as it came over TCP: MBAP header fields and the PDU."""

    transaction_id: int
    unit_id: int
    pdu: bytes


def split_frames(buffer: bytearray) -> list[Frame]:
    """Take every complete frame from the front of ``buffer`` (pipelined requests included),
    leaving an incomplete one in it. Raises FramingError for a header no Modbus client sends
    (protocol id not 0, length out of 2…254): the stream cannot be resynchronised after it."""
    frames: list[Frame] = []
    while len(buffer) >= MBAP_SIZE:
        transaction_id, protocol_id, length, unit_id = MBAP.unpack_from(buffer)
        if protocol_id != 0:
            raise FramingError(f"protocol id {protocol_id} is not Modbus (0)")
        if not MIN_LENGTH <= length <= MAX_LENGTH:
            raise FramingError(f"MBAP length {length} is outside {MIN_LENGTH}…{MAX_LENGTH}")
        end = MBAP_SIZE - 1 + length
        if len(buffer) < end:
            break
        frames.append(Frame(transaction_id, unit_id, bytes(buffer[MBAP_SIZE:end])))
        del buffer[:end]
    return frames


def tcp_response(frame: Frame, pdu: bytes) -> bytes:
    """The MBAP frame answering ``frame`` with ``pdu``."""
    return MBAP.pack(frame.transaction_id, 0, len(pdu) + 1, frame.unit_id) + pdu


def exception_pdu(function: int, code: ExceptionCode) -> bytes:
    """An exception response: the function code with its high bit set, then the code."""
    return bytes(((function | 0x80) & 0xFF, code))


class ModbusError(Exception):
    """A request answered with a Modbus exception."""

    def __init__(self, code: ExceptionCode) -> None:
        super().__init__(code.name)
        self.code = code


# A unit's registers: read(address, count) -> 2·count bytes, or ModbusError.
ReadRegisters = Callable[[int, int], bytes]


def answer(pdu: bytes, read: ReadRegisters | None) -> bytes:
    """The response PDU to a request PDU for a unit whose registers ``read`` returns (None:
    no such unit). Every request gets an answer: data or an exception, never an error."""
    if not pdu:
        return exception_pdu(0, ExceptionCode.ILLEGAL_FUNCTION)
    function = pdu[0]
    if read is None:
        return exception_pdu(function, ExceptionCode.GATEWAY_TARGET_FAILED)
    try:
        # FC 3 and FC 4 read the same registers, as meters' maps do. Writes (FC 6, 16) come
        # here only while they are disabled; they and every other function are refused.
        if function in (Function.READ_HOLDING_REGISTERS, Function.READ_INPUT_REGISTERS):
            return _read(function, pdu, read)
        raise ModbusError(ExceptionCode.ILLEGAL_FUNCTION)
    except ModbusError as error:
        return exception_pdu(function, error.code)


def _read(function: int, pdu: bytes, read: ReadRegisters) -> bytes:
    if len(pdu) != 5:
        raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE)
    address, count = struct.unpack_from(">HH", pdu, 1)
    if not 1 <= count <= MAX_READ_REGISTERS:
        raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE)
    if address + count > REGISTER_SPACE:
        raise ModbusError(ExceptionCode.ILLEGAL_DATA_ADDRESS)
    data = read(address, count)
    return bytes((function, 2 * count)) + data


@dataclass(frozen=True)
class WriteRequest:
    """An FC 6 or FC 16 request: the first register and the values written from it on."""

    function: int
    address: int
    values: tuple[int, ...]


def is_write(pdu: bytes) -> bool:
    """Whether the request is a write (FC 6 or FC 16)."""
    return bool(pdu) and pdu[0] in WRITES


def parse_write(pdu: bytes) -> WriteRequest:
    """The write a PDU asks for; ModbusError 03 for a malformed one."""
    function = pdu[0]
    if function == Function.WRITE_SINGLE_REGISTER and len(pdu) == 5:
        address, value = struct.unpack_from(">HH", pdu, 1)
        return WriteRequest(function, address, (value,))
    if function == Function.WRITE_MULTIPLE_REGISTERS and len(pdu) >= 6:
        address, count, size = struct.unpack_from(">HHB", pdu, 1)
        if 1 <= count <= MAX_WRITE_REGISTERS and size == 2 * count and len(pdu) == 6 + size:
            if address + count > REGISTER_SPACE:
                raise ModbusError(ExceptionCode.ILLEGAL_DATA_ADDRESS)
            return WriteRequest(function, address, struct.unpack_from(f">{count}H", pdu, 6))
    raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE)


def write_response(request: WriteRequest) -> bytes:
    """The normal answer to a write: FC 6 echoes it, FC 16 gives address and quantity."""
    if request.function == Function.WRITE_SINGLE_REGISTER:
        return struct.pack(">BHH", request.function, request.address, request.values[0])
    return struct.pack(">BHH", request.function, request.address, len(request.values))
