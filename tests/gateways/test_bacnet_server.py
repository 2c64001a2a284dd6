"""The BACnet/IP device on the wire, with hand-built datagrams: segmentation, routing, BVLC,
DCC, the commandable output, live reconfiguration and the BBMD registration."""

from __future__ import annotations

import socket
import struct
import time

import pytest
from bacnet_support import (
    IDENTITY,
    LOADS,
    RawClient,
    confirmed,
    frame,
    oid,
    reading,
    rp_body,
    running_gateway,
    strip,
    wait_until,
)
from pydantic import SecretStr

from emsbox.gateways.bacnet import notifications as notifications_module
from emsbox.gateways.bacnet import transmissions as transmissions_module
from emsbox.gateways.bacnet.config import BacnetConfig
from emsbox.gateways.bacnet.server import BacnetGateway, BacnetSetupError

DEVICE = 8
AI, AV, BI, BO = 0, 2, 3, 4
RPM_ALL_LOAD = b"".join(
    b"\x0c" + oid(AI if i < 39 else AV, 1000 + i) + b"\x1e\x09\x08\x1f" for i in range(80)
)


def local(**changes: object) -> BacnetConfig:
    settings: dict[str, object] = {"enabled": True, "bind_address": "127.0.0.1", "port": 0}
    return BacnetConfig.model_validate(settings | changes)


@pytest.fixture
def device():
    with running_gateway(local()) as (gateway, bus, io, health):
        raw = RawClient(gateway.address)
        try:
            yield gateway, bus, io, health, raw
        finally:
            raw.close()


def test_answers_never_exceed_the_clients_apdu_size(device):
    _, _, _, _, raw = device
    whole, _ = raw.request(confirmed(1, 14, RPM_ALL_LOAD, max_apdu_code=5))
    for code, size in ((2, 206), (3, 480), (4, 1024), (5, 1476)):
        raw.send(frame(confirmed(7, 14, RPM_ALL_LOAD, max_apdu_code=code)))
        segments = []
        while True:
            apdu = strip(raw.receive())
            assert len(apdu) <= size  # the header counts (5.2.1)
            segments.append(apdu)
            raw.send(frame(bytes([0x40, 7, apdu[2], 16]), b"\x01\x00"))
            if not apdu[0] & 0x04:
                break
        assert [s[2] for s in segments] == list(range(len(segments)))
        assert b"".join(s[5:] for s in segments) == whole[3:]
        assert all(len(s) == size for s in segments[:-1])


def test_segmentation_refused_when_the_client_takes_no_segments(device):
    _, _, _, _, raw = device
    answer, _ = raw.request(confirmed(2, 14, RPM_ALL_LOAD, sa=False))
    assert answer == bytes([0x71, 2, 4])  # abort by server, segmentation-not-supported
    # Too many segments for what the client accepts (2): buffer-overflow.
    apdu = bytes([0x02, 0x10 | 2, 3, 14]) + RPM_ALL_LOAD
    answer, _ = raw.request(apdu)
    assert answer == bytes([0x71, 3, 1])
    # A small answer still fits unsegmented.
    answer, _ = raw.request(confirmed(4, 12, rp_body(AI, 1000, 85), sa=False))
    assert answer[0] == 0x30


def test_segments_are_resent_after_a_timeout_and_duplicates_are_ignored(device, monkeypatch):
    monkeypatch.setattr(transmissions_module, "APDU_SEGMENT_TIMEOUT_MS", 200)
    _, _, _, _, raw = device
    request = frame(confirmed(9, 14, RPM_ALL_LOAD, max_apdu_code=4))
    raw.send(request)
    first = strip(raw.receive())
    assert first[0] & 0x08 and first[2] == 0
    raw.send(request)  # a retry of the request while its answer is being sent: ignored
    again = strip(raw.receive(1.0))
    assert again == first  # the timeout resent segment 0, nothing else came
    raw.send(frame(bytes([0x40, 9, 0, 3]), b"\x01\x00"))
    window = [strip(raw.receive()) for _ in range(3)]
    assert [s[2] for s in window] == [1, 2, 3]
    assert raw.receive(0.1) is None  # the window (3) is full
    raw.send(frame(bytes([0x42, 9, 1, 3]), b"\x01\x00"))  # NAK: only 1 came
    assert [strip(raw.receive())[2] for _ in range(3)] == [2, 3, 4]
    raw.send(frame(bytes([0x70, 9, 0]), b"\x01\x00"))  # the client aborts
    assert raw.receive(0.5) is None


def test_routed_requests_are_answered_through_the_router(device):
    _, _, _, _, raw = device
    # SNET 7, SADR 0x2a: a device behind a router
    npdu = b"\x01\x0c\x00\x07\x01\x2a"
    raw.send(frame(confirmed(5, 12, rp_body(AI, 1000, 85)), npdu))
    data = raw.receive()
    assert data[4:11] == b"\x01\x20\x00\x07\x01\x2a\xff"  # DNET 7, DADR 0x2a, hop count
    assert data[11] == 0x30
    # For another network: not this device's
    raw.send(frame(confirmed(6, 12, rp_body(AI, 1000, 85)), b"\x01\x24\x00\x09\x01\x05\xff"))
    # Network layer message (Who-Is-Router-To-Network): ignored
    raw.send(frame(b"", b"\x01\x80\x00"))
    assert raw.receive(0.3) is None


def test_bbmd_functions_are_refused_and_forwarded_npdus_not_reflected(device):
    _, _, _, _, raw = device
    for function, nak in ((0x01, 0x10), (0x02, 0x20), (0x05, 0x30), (0x06, 0x40), (0x09, 0x60)):
        raw.send(bytes([0x81, function, 0x00, 0x06, 0x00, 0x3C]))
        assert raw.receive() == bytes([0x81, 0x00, 0x00, 0x06, 0x00, nak])
    # A Forwarded-NPDU naming a third party: no answer goes to it (nor to us).
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.bind(("127.0.0.1", 0))
    victim.settimeout(0.3)
    try:
        host = socket.inet_aton("127.0.0.1")
        port = victim.getsockname()[1]
        payload = (
            host + struct.pack(">H", port) + b"\x01\x04" + confirmed(1, 12, rp_body(AI, 1000, 85))
        )
        raw.send(bytes([0x81, 0x04]) + struct.pack(">H", 4 + len(payload)) + payload)
        with pytest.raises(TimeoutError):
            victim.recvfrom(100)
        assert raw.receive(0.2) is None
    finally:
        victim.close()


def test_malformed_requests_get_a_reject(device):
    _, _, _, _, raw = device
    # ReadProperty with the property identifier missing
    answer, _ = raw.request(confirmed(1, 12, b"\x0c" + oid(AI, 1000)))
    assert answer == bytes([0x60, 1, 5])  # missing-required-parameter
    # An application tag where a context tag belongs
    answer, _ = raw.request(confirmed(2, 12, b"\xc4" + oid(AI, 1000) + b"\x19\x55"))
    assert answer == bytes([0x60, 2, 4])  # invalid-tag
    # Too many arguments
    answer, _ = raw.request(confirmed(3, 12, rp_body(AI, 1000, 85) + b"\x21\x01"))
    assert answer == bytes([0x60, 3, 7])
    # Segmented requests are not taken (segmented-transmit only)
    answer, _ = raw.request(bytes([0x0A, 0x75, 4, 0, 4, 12]) + rp_body(AI, 1000, 85))
    assert answer == bytes([0x71, 4, 4])
    # RP of ALL: an RPM-only identifier
    answer, _ = raw.request(confirmed(5, 12, rp_body(AI, 1000, 8)))
    assert answer == bytes([0x50, 5, 12, 0x91, 2, 0x91, 27])


def test_device_communication_control_with_the_password():
    config = local(dcc_password=SecretStr("s3cret"))
    with running_gateway(config) as (gateway, _, _, _):
        raw = RawClient(gateway.address)
        try:
            dcc_disable = b"\x19\x01\x2d\x07\x00s3cret"  # disable, password
            answer, _ = raw.request(confirmed(1, 17, b"\x19\x01\x2d\x06\x00guess"))
            assert answer == bytes([0x50, 1, 17, 0x91, 4, 0x91, 26])  # password-failure
            answer, _ = raw.request(confirmed(2, 17, b"\x19\x01"))
            assert answer == bytes([0x50, 2, 17, 0x91, 4, 0x91, 26])
            answer, _ = raw.request(confirmed(3, 17, dcc_disable))
            assert answer == bytes([0x20, 3, 17])
            raw.send(frame(confirmed(4, 12, rp_body(AI, 1000, 85))))
            assert raw.receive(0.3) is None  # disabled: no answer (16.1)
            answer, _ = raw.request(confirmed(5, 20, b"\x09\x01\x1d\x07\x00s3cret"))
            assert answer == bytes([0x50, 5, 20, 0x91, 5, 0x91, 29])  # no reinitialize
            answer, _ = raw.request(confirmed(6, 17, b"\x19\x00\x2d\x07\x00s3cret"))
            assert answer == bytes([0x20, 6, 17])
            answer, _ = raw.request(confirmed(7, 12, rp_body(AI, 1000, 85)))
            assert answer[0] == 0x30
        finally:
            raw.close()


def test_the_output_is_commanded_through_its_priority_array():
    with running_gateway(local(output_commandable=True)) as (gateway, _, io, _):
        raw = RawClient(gateway.address)
        try:

            def write(value: bytes, priority: int | None) -> bytes:
                body = b"\x0c" + oid(BO, 0) + b"\x19\x55\x3e" + value + b"\x3f"
                if priority is not None:
                    body += bytes([0x49, priority])
                return raw.request(confirmed(1, 15, body))[0]

            assert write(b"\x91\x01", 8) == bytes([0x20, 1, 15])
            assert io.switched[-1][0] is True and io.switched[-1][1].startswith("bacnet 127.0.0.1")
            assert write(b"\x91\x00", 16) == bytes([0x20, 1, 15])
            assert io.output_on  # priority 8 still wins
            array, _ = raw.request(confirmed(2, 12, rp_body(BO, 0, 87)))
            assert array.endswith(
                b"\x3e" + b"\x00" * 7 + b"\x91\x01" + b"\x00" * 7 + b"\x91\x00\x3f"
            )
            assert write(b"\x00", 8) == bytes([0x20, 1, 15])  # relinquish
            assert not io.output_on
            assert write(b"\x91\x01", 6)[0] == 0x50  # 6 is minimum on/off's
            assert write(b"\x44\x3f\x80\x00\x00", 8) == bytes([0x50, 1, 15, 0x91, 2, 0x91, 9])
            io.remote = False
            assert write(b"\x91\x01", 8) == bytes([0x50, 1, 15, 0x91, 2, 0x91, 40])
            # A client polls presentValue: it follows the real output
            wait_until(
                lambda: raw.request(confirmed(3, 12, rp_body(BO, 0, 85)))[0][-2:] == b"\x00\x3f"
            )
        finally:
            raw.close()


def test_write_property_multiple_reports_the_first_failure(device):
    _, _, _, _, raw = device
    body = b"\x0c" + oid(AI, 1000) + b"\x1e\x09\x55\x2e\x44\x3f\x80\x00\x00\x2f\x1f"
    answer, _ = raw.request(confirmed(1, 16, body))
    assert answer[:3] == bytes([0x50, 1, 16])
    assert answer[3:] == (
        b"\x0e\x91\x02\x91\x28\x0f" + b"\x1e\x0c" + oid(AI, 1000) + b"\x19\x55\x1f"
    )


def test_apply_rebinds_live_and_refuses_a_busy_port():
    with running_gateway(local()) as (gateway, _, _, _):
        first = gateway.address
        gateway.apply(local(location="plant room"), LOADS, IDENTITY)
        assert gateway.address == first  # same socket
        raw = RawClient(first)
        try:
            answer, _ = raw.request(confirmed(1, 12, rp_body(DEVICE, 4194303, 58)))
            assert answer.endswith(b"\x3e\x75\x0b\x00plant room\x3f")
            busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            busy.bind(("127.0.0.1", 0))
            try:
                with pytest.raises(BacnetSetupError) as refused:
                    gateway.apply(local(port=busy.getsockname()[1]), LOADS, IDENTITY)
                assert refused.value.key == "bacnet.port"
            finally:
                busy.close()
            assert gateway.address == first
            answer, _ = raw.request(confirmed(2, 12, rp_body(AI, 1000, 85)))
            assert answer[0] == 0x30  # still serving
            gateway.apply(local(), ["main"], IDENTITY)
            objects, _ = raw.request(confirmed(3, 12, rp_body(DEVICE, 4194303, 76, 0)))
            assert objects.endswith(b"\x3e\x21\x55\x3f")  # 1 + 82 + 2 objects
            gateway.apply(BacnetConfig(), LOADS, IDENTITY)
            assert gateway.address is None and gateway.health() == []
            raw.send(frame(confirmed(4, 12, rp_body(AI, 1000, 85))))
            assert raw.receive(0.3) is None
        finally:
            raw.close()


def test_registers_as_a_foreign_device_and_reports_the_bbmd():
    bbmd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bbmd.bind(("127.0.0.1", 0))
    bbmd.settimeout(3)
    port = bbmd.getsockname()[1]
    try:
        with running_gateway(local(bbmd_address=f"127.0.0.1:{port}", bbmd_ttl_s=60)) as (
            gateway,
            _,
            _,
            _,
        ):
            data, source = bbmd.recvfrom(100)
            assert data == bytes([0x81, 0x05, 0x00, 0x06, 0x00, 60])
            assert [h.healthy for h in gateway.health()] == [True, False]
            bbmd.sendto(bytes([0x81, 0x00, 0x00, 0x06, 0x00, 0x00]), source)
            wait_until(lambda: gateway.health()[1].healthy)
            assert "registered with 127.0.0.1" in gateway.health()[1].detail
            # A Who-Is the BBMD forwards is answered to its original sender
            asker = RawClient(("127.0.0.1", port))
            try:
                host = socket.inet_aton("127.0.0.1") + struct.pack(
                    ">H", asker.sock.getsockname()[1]
                )
                payload = host + b"\x01\x00\x10\x08"
                bbmd.sendto(
                    bytes([0x81, 0x04]) + struct.pack(">H", 4 + len(payload)) + payload, source
                )
                i_am = asker.receive()
                assert i_am is not None and strip(i_am)[:2] == b"\x10\x00"
            finally:
                asker.close()
            bbmd.sendto(bytes([0x81, 0x00, 0x00, 0x06, 0x00, 0x30]), source)
            wait_until(lambda: not gateway.health()[1].healthy)
            assert "refused" in gateway.health()[1].detail
    finally:
        bbmd.close()


def test_confirmed_notifications_are_retried_then_given_up(device, monkeypatch):
    monkeypatch.setattr(notifications_module, "APDU_TIMEOUT_MS", 100)
    _, bus, _, _, raw = device
    # SubscribeCOV: process 3, analog-input 1000, confirmed, lifetime 60
    body = b"\x09\x03\x1c" + oid(AI, 1000) + b"\x29\x01\x39\x3c"
    answer, _ = raw.request(confirmed(1, 5, body))
    assert answer == bytes([0x20, 1, 5])
    notifications = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        data = raw.receive(0.5)
        if data is None:
            break
        notifications.append(strip(data))
    assert len(notifications) == 4  # first send and three retries (numberOfApduRetries)
    assert {n[2] for n in notifications} == {notifications[0][2]}  # one invoke id
    assert notifications[0][3] == 1  # confirmedCOVNotification
    # Acknowledged ones end at once
    bus.publish(reading("main", v_l1=300.0))
    data = strip(raw.receive())
    raw.send(frame(bytes([0x20, data[2], 1]), b"\x01\x00"))
    assert raw.receive(0.5) is None
    # Cancellation: no more notifications
    answer, _ = raw.request(confirmed(2, 5, b"\x09\x03\x1c" + oid(AI, 1000)))
    assert answer == bytes([0x20, 2, 5])
    bus.publish(reading("main", v_l1=200.0))
    assert raw.receive(0.5) is None


def test_subscriptions_to_unknown_or_device_objects_are_refused(device):
    _, _, _, _, raw = device
    answer, _ = raw.request(confirmed(1, 5, b"\x09\x03\x1c" + oid(AI, 7) + b"\x29\x00\x39\x3c"))
    assert answer == bytes([0x50, 1, 5, 0x91, 1, 0x91, 31])
    answer, _ = raw.request(
        confirmed(2, 5, b"\x09\x03\x1c" + oid(DEVICE, 4194303) + b"\x29\x00\x39\x3c")
    )
    assert answer == bytes([0x50, 2, 5, 0x91, 1, 0x91, 45])


def test_digital_input_follows_the_controller(device):
    _, _, io, _, raw = device
    io.input_closed = True
    wait_until(lambda: raw.request(confirmed(1, 12, rp_body(BI, 0, 85)))[0][-2:] == b"\x01\x3f")


def test_port_in_use_at_start_is_a_setup_error():
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    from emsbox.bus import Bus

    gateway = BacnetGateway(Bus())
    try:
        with pytest.raises(BacnetSetupError):
            gateway.apply(local(port=busy.getsockname()[1]), LOADS, IDENTITY)
        assert gateway.health() == []
    finally:
        gateway.stop()
        busy.close()


def test_moving_to_an_address_not_on_this_host_keeps_the_old_one():
    with running_gateway(local()) as (gateway, _, _, _):
        port = gateway.address[1]
        gateway.apply(local(port=port), LOADS, IDENTITY)  # the same port, now fixed
        assert gateway.address == ("127.0.0.1", port)
        with pytest.raises(BacnetSetupError) as refused:
            gateway.apply(local(port=port, bind_address="192.0.2.1"), LOADS, IDENTITY)
        assert refused.value.key == "bacnet.bind_address"
        raw = RawClient(("127.0.0.1", port))
        try:
            answer, _ = raw.request(confirmed(1, 12, rp_body(AI, 1000, 85)))
            assert answer[0] == 0x30
        finally:
            raw.close()


def test_disable_initiation_stops_notifications_but_not_answers():
    with running_gateway(local(dcc_password=SecretStr("pw"))) as (gateway, bus, _, _):
        raw = RawClient(gateway.address)
        try:
            answer, _ = raw.request(confirmed(1, 17, b"\x19\x02\x2d\x03\x00pw"))
            assert answer == bytes([0x20, 1, 17])
            subscribe = b"\x09\x03\x1c" + oid(AI, 1000) + b"\x29\x00\x39\x3c"
            answer, _ = raw.request(confirmed(2, 5, subscribe))
            assert answer == bytes([0x20, 2, 5])
            bus.publish(reading("main", v_l1=260.0))
            assert raw.receive(0.5) is None  # no notification while initiation is off
            raw.send(frame(b"\x10\x08", b"\x01\x00"))
            assert strip(raw.receive())[:2] == b"\x10\x00"  # Who-Is is still answered
            answer, _ = raw.request(confirmed(3, 17, b"\x19\x00\x2d\x03\x00pw"))
            assert answer == bytes([0x20, 3, 17])
            notification = strip(raw.receive(2.0))  # the change is reported once enabled
            assert notification[:2] == b"\x10\x02"
        finally:
            raw.close()
