"""Modbus framing and answers, without a network: every request gets the right answer."""

import struct

import pytest
from modbus_support import read_pdu, request

from emsbox.gateways.modbus.commands import commands_of
from emsbox.gateways.modbus.protocol import (
    ExceptionCode,
    Frame,
    FramingError,
    ModbusError,
    WriteRequest,
    answer,
    parse_write,
    split_frames,
    tcp_response,
    write_response,
)

REGISTERS = bytes(range(256)) * 2  # 256 registers from address 100


def read(address: int, count: int) -> bytes:
    if address < 100 or address + count > 356:
        raise ModbusError(ExceptionCode.ILLEGAL_DATA_ADDRESS)
    return REGISTERS[2 * (address - 100) : 2 * (address - 100 + count)]


def test_pipelined_frames_are_all_taken_and_a_partial_one_is_kept():
    buffer = bytearray(request(1, 1, read_pdu(3, 100, 2)) + request(2, 5, read_pdu(4, 0, 1)))
    tail = request(3, 1, read_pdu(3, 1, 1))
    buffer += tail[:9]
    frames = split_frames(buffer)
    assert frames == [Frame(1, 1, read_pdu(3, 100, 2)), Frame(2, 5, read_pdu(4, 0, 1))]
    assert bytes(buffer) == tail[:9]
    buffer += tail[9:]
    assert split_frames(buffer) == [Frame(3, 1, read_pdu(3, 1, 1))]
    assert buffer == bytearray()


@pytest.mark.parametrize(
    "header",
    [
        struct.pack(">HHHB", 1, 1, 6, 1),  # protocol id 1
        struct.pack(">HHHB", 1, 0, 0, 1),  # length 0
        struct.pack(">HHHB", 1, 0, 1, 1),  # a unit id without a PDU
        struct.pack(">HHHB", 1, 0, 255, 1),  # longer than any PDU
    ],
)
def test_a_header_no_modbus_client_sends_is_a_framing_error(header):
    with pytest.raises(FramingError):
        split_frames(bytearray(header + b"\x03\x00\x00\x00\x01"))


def test_fc3_and_fc4_answer_the_same_registers():
    for function in (3, 4):
        assert answer(read_pdu(function, 101, 3), read) == bytes((function, 6)) + REGISTERS[2:8]
    assert answer(read_pdu(3, 100, 125), read)[1] == 250


@pytest.mark.parametrize(
    ("pdu", "code"),
    [
        (read_pdu(3, 100, 0), ExceptionCode.ILLEGAL_DATA_VALUE),
        (read_pdu(3, 100, 126), ExceptionCode.ILLEGAL_DATA_VALUE),
        (read_pdu(4, 0xFFFF, 2), ExceptionCode.ILLEGAL_DATA_ADDRESS),
        (read_pdu(3, 99, 2), ExceptionCode.ILLEGAL_DATA_ADDRESS),
        (read_pdu(3, 300, 100), ExceptionCode.ILLEGAL_DATA_ADDRESS),
        (b"\x03\x00\x64", ExceptionCode.ILLEGAL_DATA_VALUE),  # truncated
        (read_pdu(3, 100, 1) + b"\x00", ExceptionCode.ILLEGAL_DATA_VALUE),  # too long
        (b"\x06\x00\x64\x00\x01", ExceptionCode.ILLEGAL_FUNCTION),  # write single register
        (b"\x10\x00\x64\x00\x01\x02\x00\x01", ExceptionCode.ILLEGAL_FUNCTION),
        (b"\x01\x00\x00\x00\x01", ExceptionCode.ILLEGAL_FUNCTION),  # coils
        (b"\x2b\x0e\x01\x00", ExceptionCode.ILLEGAL_FUNCTION),
        (b"\x7f", ExceptionCode.ILLEGAL_FUNCTION),
    ],
)
def test_a_bad_request_gets_its_exception(pdu, code):
    assert answer(pdu, read) == bytes((pdu[0] | 0x80, code))


def test_a_unit_that_is_not_there_is_a_gateway_target_failure():
    assert answer(read_pdu(3, 100, 1), None) == b"\x83\x0b"


def test_the_response_frame_echoes_the_transaction_and_unit():
    frame = Frame(0xBEEF, 7, read_pdu(3, 100, 1))
    assert (
        tcp_response(frame, b"\x03\x02\x00\x01") == b"\xbe\xef\x00\x00\x00\x05\x07\x03\x02\x00\x01"
    )


def test_writes_are_parsed_and_malformed_ones_refused():
    assert parse_write(b"\x06\x98\x58\x00\x03") == WriteRequest(6, 39000, (3,))
    assert parse_write(b"\x10\x98\x58\x00\x02\x04\x00\x01\x00\x02") == WriteRequest(
        16, 39000, (1, 2)
    )
    for bad in (
        b"\x06\x98\x58\x00",  # short
        b"\x10\x98\x58\x00\x02\x03\x00\x01\x00",  # byte count disagrees
        b"\x10\x98\x58\x00\x00\x00",  # no registers
    ):
        with pytest.raises(ModbusError) as refused:
            parse_write(bad)
        assert refused.value.code == ExceptionCode.ILLEGAL_DATA_VALUE
    assert write_response(WriteRequest(6, 39000, (3,))) == b"\x06\x98\x58\x00\x03"
    assert write_response(WriteRequest(16, 39000, (1, 2))) == b"\x10\x98\x58\x00\x02"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (WriteRequest(6, 39000, (1,)), [("start", None)]),
        (WriteRequest(6, 39000, (2,)), [("stop", None)]),
        (WriteRequest(16, 39000, (3, 2)), [("reset", None), ("tariff", 2)]),
        (WriteRequest(6, 39001, (1,)), [("tariff", 1)]),
        (WriteRequest(6, 39002, (1,)), [("output", 1)]),
        (WriteRequest(16, 39001, (2, 0)), [("tariff", 2), ("output", 0)]),
    ],
)
def test_the_command_registers_name_their_actions(request_, expected):
    assert commands_of(request_) == expected


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (WriteRequest(6, 39000, (4,)), ExceptionCode.ILLEGAL_DATA_VALUE),
        (WriteRequest(6, 39001, (3,)), ExceptionCode.ILLEGAL_DATA_VALUE),
        (WriteRequest(6, 30042, (1,)), ExceptionCode.ILLEGAL_DATA_ADDRESS),
        (WriteRequest(6, 39002, (2,)), ExceptionCode.ILLEGAL_DATA_VALUE),
        (WriteRequest(16, 39002, (1, 1)), ExceptionCode.ILLEGAL_DATA_ADDRESS),
    ],
)
def test_anything_else_written_is_refused(request_, code):
    with pytest.raises(ModbusError) as refused:
        commands_of(request_)
    assert refused.value.code == code
