"""The BACnet codec: known answers of ASHRAE 135 (clause 20.2 and Annex F), round trips,
and the numbers of clause 21 cross-checked with bacpypes3's tables."""

from __future__ import annotations

import math
import struct

import pytest
from bacpypes3 import basetypes
from hypothesis import given
from hypothesis import strategies as st

from emsbox.bus import Reading
from emsbox.gateways.bacnet import encoding as enc
from emsbox.gateways.bacnet import frames, services
from emsbox.gateways.bacnet.database import Database, DeviceIdentity, LiveState
from emsbox.gateways.bacnet.encoding import DecodeError, Reader
from emsbox.gateways.bacnet.identifiers import (
    SERVICES_EXECUTED_BITS,
    EngineeringUnits,
    ErrorCode,
    ObjectType,
    PropertyId,
    Reliability,
)
from emsbox.gateways.bacnet.objects import ObjectSpec
from emsbox.samples import Wiring

# -- clause 20.2 examples -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (enc.app_null(), "00"),
        (enc.app_boolean(False), "10"),
        (enc.app_boolean(True), "11"),
        (enc.app_unsigned(72), "2148"),
        (enc.app_signed(72), "3148"),
        (enc.app_real(72.0), "4442900000"),
        (enc.app_double(72.0), "55084052000000000000"),
        (enc.app_octets(bytes.fromhex("1234ff")), "631234ff"),
        (
            enc.app_string("This is a BACnet string!"),
            "751900546869732069732061204241436e657420737472696e6721",
        ),
        (enc.app_bit_string([True, False, True, False, True]), "8203a8"),
        (enc.app_enumerated(0), "9100"),
        (enc.app_object_id(ObjectType.BINARY_INPUT, 15), "c400c0000f"),
        (enc.ctx_unsigned(0, 256), "0a0100"),
        (enc.app_signed(-1), "31ff"),
        (enc.app_signed(128), "320080"),
        (enc.opening(3) + enc.closing(3), "3e3f"),
        (enc.opening(20) + enc.closing(20), "fe14ff14"),
        (enc.tagged(30, b"\x01", context=True), "f91e01"),
    ],
)
def test_known_encodings(encoded, expected):
    assert encoded.hex() == expected


def test_extended_lengths():
    assert enc.tag_header(7, False, 5) == b"\x75\x05"
    assert enc.tag_header(7, False, 253) == b"\x75\xfd"
    assert enc.tag_header(7, False, 254) == b"\x75\xfe\x00\xfe"
    assert enc.tag_header(7, False, 70000) == b"\x75\xff\x00\x01\x11\x70"


def annex_f_database() -> Database:
    """Annex F.3.5's device: analog-input 5 reading 72.4."""
    spec = ObjectSpec(ObjectType.ANALOG_INPUT, 5, "ai5", "", "load", "v_l1")
    values = {"v_l1": 72.4}
    state = LiveState(
        readings={
            "load": Reading("load", Wiring.SINGLE_PHASE, 0.0, 1.0, 1, values, values, values, {})
        },
        healthy={"load": True},
    )
    return Database(DeviceIdentity(1, "dev", "", "", "1"), [spec], state=state)


def test_read_property_of_annex_f():
    # F.3.5: ReadProperty of (analog-input, 5) presentValue, and its ACK with 72.4
    apdu = frames.parse_apdu(bytes.fromhex("0002010c0c000000051955"))
    assert isinstance(apdu, frames.ConfirmedRequest)
    assert (apdu.invoke_id, apdu.service, apdu.max_apdu) == (1, 12, 206)
    ack = services.read_property(annex_f_database(), apdu.body)
    assert frames.complex_ack(1, 12, ack).hex() == "30010c0c0000000519553e444290cccd3f"


def test_read_property_of_an_array_element_and_its_length():
    db = annex_f_database()
    plist = services.read_property(db, bytes.fromhex("0c00000005") + b"\x1a\x01\x73")
    count = PropertyId.PROPERTY_LIST
    assert plist.startswith(enc.ctx_object_id(0, 0, 5) + enc.ctx_enumerated(1, count))
    length = services.read_property(db, bytes.fromhex("0c00000005") + b"\x1a\x01\x73\x29\x00")
    assert length.endswith(b"\x3e\x21\x08\x3f")  # 8 properties listed
    with pytest.raises(services.PropertyError) as error:
        services.read_property(db, bytes.fromhex("0c00000005") + b"\x1a\x01\x73\x29\x09")
    assert error.value.error_code == ErrorCode.INVALID_ARRAY_INDEX


def test_a_reading_lacking_the_value_reads_zero_with_no_sensor():
    db = annex_f_database()
    db.state.readings["load"] = Reading("load", Wiring.SINGLE_PHASE, 0.0, 1.0, 1, {}, {}, {}, {})
    spec = db.by_key[(0, 5)]
    assert db.value(spec) == (0.0, Reliability.NO_SENSOR)
    db.state.healthy["load"] = False
    assert db.value(spec) == (0.0, Reliability.COMMUNICATION_FAILURE)


# -- round trips ----------------------------------------------------------------------------


@given(
    st.integers(0, 254),
    st.booleans(),
    st.binary(max_size=300),
)
def test_tags_round_trip(number, context, data):
    if not context and number == enc.BOOLEAN:
        return  # an application Boolean carries its value in the header
    encoded = enc.tagged(number, data, context)
    tag = Reader(encoded).read()
    assert (tag.number, tag.context, tag.data) == (number, context, data)


@given(st.integers(0, 2**32 - 1))
def test_unsigned_round_trip(value):
    octets = enc.unsigned_octets(value)
    assert enc.decode_unsigned(octets) == value
    assert len(octets) == max(1, (value.bit_length() + 7) // 8)


@given(st.integers(-(2**31), 2**31 - 1))
def test_signed_round_trip(value):
    octets = enc.signed_octets(value)
    assert int.from_bytes(octets, "big", signed=True) == value
    assert len(octets) <= 4


@given(st.lists(st.booleans(), max_size=80))
def test_bit_strings_round_trip(bits):
    octets = enc.bit_string_octets(bits)
    unused = octets[0]
    value = int.from_bytes(octets[1:], "big") if len(octets) > 1 else 0
    width = 8 * (len(octets) - 1)
    decoded = [bool(value >> (width - 1 - i) & 1) for i in range(width - unused)]
    assert decoded == bits


@given(st.text(max_size=200))
def test_strings_round_trip(text):
    tag = Reader(enc.app_string(text)).read()
    assert enc.decode_string(tag.data) == text


@given(st.floats(allow_nan=False, width=32))
def test_reals_round_trip(value):
    assert enc.decode_real(enc.real_octets(value)) == value


@given(st.binary(max_size=40))
def test_the_reader_never_fails_but_with_decode_error(data):
    reader = Reader(data)
    try:
        while not reader.at_end():
            reader.read()
    except DecodeError:
        pass


def test_skip_value_takes_nested_constructions():
    data = b"\x3e\x1e\x21\x01\x1f\x44" + struct.pack(">f", 1.5) + b"\x3f\x49\x08"
    reader = Reader(data)
    assert reader.skip_value(3) == data[1:-3]
    assert reader.context_unsigned(4) == 8
    with pytest.raises(DecodeError):
        Reader(b"\x3e\x21\x01").skip_value(3)
    with pytest.raises(DecodeError):
        Reader(b"\x3e\x4f").skip_value(3)


def test_reals_beyond_their_range_are_clamped():
    assert enc.decode_real(enc.real_octets(1e39)) == pytest.approx(3.4028234e38)
    assert math.isnan(enc.decode_real(enc.real_octets(math.nan)))


# -- BVLC, NPDU, APDU headers ---------------------------------------------------------------


def test_bvlc_parsing():
    assert frames.parse_bvlc(bytes.fromhex("810a00080104 1008".replace(" ", ""))).payload == (
        bytes.fromhex("01041008")
    )
    forwarded = frames.parse_bvlc(bytes.fromhex("8104000e c0a80105bac0 01001008".replace(" ", "")))
    assert forwarded.origin == ("192.168.1.5", 47808)
    for bad in ("", "810a", "820a0006 0100", "810a0009 0100", "8104000801001008"):
        with pytest.raises(frames.FrameError):
            frames.parse_bvlc(bytes.fromhex(bad.replace(" ", "")))


def test_npdu_parsing_and_answers_routed_back():
    npdu = frames.parse_npdu(bytes.fromhex("012c ffff00 0007 012a ff 0c".replace(" ", "")))
    assert npdu.dnet == 0xFFFF and npdu.snet == 7 and npdu.sadr == b"\x2a"
    assert npdu.expecting_reply and npdu.apdu == b"\x0c"
    assert frames.npdu_header(False, 7, b"\x2a") == bytes.fromhex("01200007012aff")
    for bad in ("01", "02 00", "0150", "0108 0007 00", "0120 0005 06 01"):
        with pytest.raises(frames.FrameError):
            frames.parse_npdu(bytes.fromhex(bad.replace(" ", "")))


def test_apdu_headers():
    request = frames.parse_apdu(bytes.fromhex("0265 07 0c 0c00000005 1955".replace(" ", "")))
    assert isinstance(request, frames.ConfirmedRequest)
    assert request.segmented_response_accepted and request.max_segments == 64
    assert request.max_apdu == 1476 and request.invoke_id == 7
    ack = frames.parse_apdu(bytes.fromhex("42 07 03 04".replace(" ", "")))
    assert ack == frames.SegmentAck(True, False, 7, 3, 4)
    assert frames.complex_ack_segment(
        7, 14, b"x", sequence=258, window=16, more=True
    ) == bytes.fromhex("3c0702100e78")
    with pytest.raises(frames.ApduError) as truncated:
        frames.parse_apdu(b"\x00\x05\x09")
    assert truncated.value.invoke_id == 9
    with pytest.raises(frames.ApduError):
        frames.parse_apdu(b"\x80\x00")


# -- clause 21 numbers against bacpypes3's tables -------------------------------------------


def _name(member: str) -> str:
    return member.lower().replace("_", "-")


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (EngineeringUnits, basetypes.EngineeringUnits),
        (PropertyId, basetypes.PropertyIdentifier),
        (ObjectType, basetypes.ObjectType),
        (ErrorCode, basetypes.ErrorCode),
        (Reliability, basetypes.Reliability),
    ],
)
def test_enumerations_match_the_standard(ours, theirs):
    for member in ours:
        assert int(theirs(_name(member.name))) == member.value, member


def test_services_bits_match_the_standard():
    names = basetypes.ServicesSupported._bitstring_names
    spelled = {
        "subscribeCOV": "subscribe-cov",
        "readProperty": "read-property",
        "readPropertyMultiple": "read-property-multiple",
        "writeProperty": "write-property",
        "writePropertyMultiple": "write-property-multiple",
        "deviceCommunicationControl": "device-communication-control",
        "reinitializeDevice": "reinitialize-device",
        "who-Has": "who-has",
        "who-Is": "who-is",
    }
    for ours, bit in SERVICES_EXECUTED_BITS.items():
        assert names[spelled[ours]] == bit


@given(st.binary(max_size=60), st.sampled_from([12, 14, 15, 16, 5, 17, 20]))
def test_services_fail_only_with_the_standards_answers(body, service):
    """Any parameters: an answer, or a Reject/Error reason, never another exception."""
    db = annex_f_database()
    try:
        if service == 12:
            services.read_property(db, body)
        elif service == 14:
            services.read_property_multiple(db, body)
        elif service == 15:
            services.write_property(db, body, None)
        elif service == 16:
            services.write_property_multiple(db, body, None)
        elif service == 5:
            services.parse_subscribe_cov(db, body)
        elif service == 17:
            services.parse_communication_control(body)
        else:
            services.parse_reinitialize(body)
    except (DecodeError, services.PropertyError, services.WpmError):
        pass
