"""The BACnet/IP device's bounds and corner cases on the wire: broadcasts to a device bound
to one address, the limits of segmented answers and of confirmed notifications, DCC's
disable-initiation, the BBMD registration's timing and name lookup, the periodic work."""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import SimpleNamespace

import pytest
from bacnet_support import (
    IDENTITY,
    LOADS,
    RawClient,
    confirmed,
    frame,
    oid,
    rp_body,
    running_gateway,
    strip,
    wait_until,
)
from pydantic import SecretStr

from emsbox.gateways.bacnet import notifications as notifications_module
from emsbox.gateways.bacnet import registration as registration_module
from emsbox.gateways.bacnet import transmissions as transmissions_module
from emsbox.gateways.bacnet.config import BacnetConfig
from emsbox.gateways.bacnet.registration import Registration

DEVICE, AI = 8, 0
LOOPBACK_BROADCAST = "127.255.255.255"
RPM_ALL_LOAD = b"".join(
    b"\x0c" + oid(AI if i < 39 else 2, 1000 + i) + b"\x1e\x09\x08\x1f" for i in range(80)
)
WHO_IS = b"\x10\x08"


def local(**changes: object) -> BacnetConfig:
    settings: dict[str, object] = {"enabled": True, "bind_address": "127.0.0.1", "port": 0}
    return BacnetConfig.model_validate(settings | changes)


def segment_ack(invoke: int, sequence: int, window: int = 1) -> bytes:
    return frame(bytes([0x40, invoke, sequence, window]), b"\x01\x00")


@pytest.fixture
def device():
    with running_gateway(local()) as (gateway, bus, _, _):
        raw = RawClient(gateway.address)
        try:
            yield gateway, bus, raw
        finally:
            raw.close()


# -- broadcasts to a device bound to one address ----------------------------------------------


def test_a_device_bound_to_one_address_hears_its_broadcast_address():
    with running_gateway(local(broadcast_address=LOOPBACK_BROADCAST)) as (gateway, _, _, _):
        port = gateway.address[1]
        asker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        asker.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        asker.bind(("127.0.0.1", 0))
        asker.settimeout(2.0)
        try:
            assert gateway._device.broadcast_receiver is not None
            asker.sendto(frame(WHO_IS, b"\x01\x00", function=0x0B), (LOOPBACK_BROADCAST, port))
            data, source = asker.recvfrom(1500)
            assert strip(data)[:2] == b"\x10\x00"  # I-Am
            assert source == ("127.0.0.1", port)  # from the device's own socket
            # Another setting keeps both sockets.
            receiver = gateway._device.broadcast_receiver
            gateway.apply(
                gateway._setup.config.model_copy(update={"location": "x"}), LOADS, IDENTITY
            )
            assert gateway._device.broadcast_receiver is receiver
            # Without a broadcast address there is no second socket (and its port is free).
            gateway.apply(local(port=port), LOADS, IDENTITY)
            assert gateway._device.broadcast_receiver is None
            free = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            free.bind((LOOPBACK_BROADCAST, port))
            free.close()
        finally:
            asker.close()


def test_a_device_on_every_address_needs_no_second_socket():
    config = local(bind_address="0.0.0.0", broadcast_address=LOOPBACK_BROADCAST)
    with running_gateway(config) as (gateway, _, _, _):
        assert gateway._device.broadcast_receiver is None
        assert "not received" not in gateway.health()[0].detail


# -- segmented answers ------------------------------------------------------------------------


def _first_answers(client: RawClient, invokes: list[int]) -> dict[int, bytes]:
    for invoke in invokes:
        client.send(frame(confirmed(invoke, 14, RPM_ALL_LOAD, max_apdu_code=4)))
    got: dict[int, bytes] = {}
    while len(got) < len(invokes):
        data = client.receive()
        assert data is not None, "no answer"
        apdu = strip(data)
        got.setdefault(apdu[1], apdu)
    return got


def test_segmented_answers_are_capped_in_total_and_per_peer(device, monkeypatch):
    monkeypatch.setattr(transmissions_module, "MAX_PER_PEER", 2)
    monkeypatch.setattr(transmissions_module, "MAX_TRANSMISSIONS", 3)
    gateway, _, raw = device
    other = RawClient(gateway.address)
    try:
        got = _first_answers(raw, [1, 2, 3])
        assert got[1][0] == 0x3C and got[2][0] == 0x3C  # segment 0, more follow
        assert got[3] == bytes([0x71, 3, 9])  # abort, out-of-resources: 2 per peer
        got = _first_answers(other, [1, 2])
        assert got[1][0] == 0x3C
        assert got[2] == bytes([0x71, 2, 9])  # 3 in all
        raw.send(frame(bytes([0x70, 1, 0]), b"\x01\x00"))  # a client abort frees a place
        wait_until(lambda: len(gateway._device.transmissions) == 2)
        assert _first_answers(other, [4])[4][0] == 0x3C
    finally:
        other.close()


def test_an_answer_too_large_is_refused_before_it_is_built(device):
    gateway, _, raw = device
    # 300 times every property of the device object: over 300 kB.
    body = b"\x0c" + oid(DEVICE, 4194303) + b"\x1e" + b"\x09\x08" * 300 + b"\x1f"
    answer, _ = raw.request(confirmed(1, 14, body))
    assert answer == bytes([0x71, 1, 1])  # abort, buffer-overflow
    # What 4 segments of 206 octets hold, at most.
    answer, _ = raw.request(bytes([0x02, 0x20 | 2, 2, 14]) + body)
    assert answer == bytes([0x71, 2, 1])
    # No segments accepted: segmentation-not-supported, as before.
    answer, _ = raw.request(confirmed(3, 14, body, sa=False))
    assert answer == bytes([0x71, 3, 4])
    assert len(gateway._device.transmissions) == 0


def test_stale_segment_acks_do_not_keep_an_answer_alive(device, monkeypatch):
    monkeypatch.setattr(transmissions_module, "APDU_SEGMENT_TIMEOUT_MS", 100)
    gateway, _, raw = device
    raw.send(frame(confirmed(5, 14, RPM_ALL_LOAD, max_apdu_code=4)))
    assert strip(raw.receive())[2] == 0
    raw.send(segment_ack(5, 0))
    assert strip(raw.receive())[2] == 1
    transmissions = gateway._device.transmissions

    def stale_ack_then_ended() -> bool:
        raw.send(segment_ack(5, 0))  # segment 0 again: stale
        return len(transmissions) == 0

    wait_until(stale_ack_then_ended, timeout_s=10.0)


def test_a_transmission_ends_after_its_lifetime(device, monkeypatch):
    monkeypatch.setattr(transmissions_module, "MAX_LIFETIME_S", 0.3)
    gateway, _, raw = device
    body = b"\x0c" + oid(DEVICE, 4194303) + b"\x1e\x09\x08\x1f"
    raw.send(frame(confirmed(6, 14, body, max_apdu_code=0)))  # about 25 segments of 50
    last = b""
    while True:
        data = raw.receive(1.0)
        if data is None:
            break
        last = strip(data)
        time.sleep(0.05)  # a slow client
        raw.send(segment_ack(6, last[2]))
    assert last[0] & 0x04  # more would have followed
    assert len(gateway._device.transmissions) == 0


def test_a_segment_ack_for_nothing_is_counted(device):
    gateway, _, raw = device
    before = gateway._device.counters.malformed
    raw.send(segment_ack(77, 0))
    wait_until(lambda: gateway._device.counters.malformed == before + 1)
    assert f"{before + 1} malformed or unexpected" in gateway.health()[0].detail


def test_segments_of_a_complex_ack_expect_a_reply(device):
    _, _, raw = device
    raw.send(frame(confirmed(8, 14, RPM_ALL_LOAD, max_apdu_code=4)))
    data = raw.receive()
    assert data[5] & 0x04  # 6.2.2: data_expecting_reply
    raw.send(frame(bytes([0x70, 8, 0]), b"\x01\x00"))


# -- DCC and ReinitializeDevice ---------------------------------------------------------------


def test_disable_initiation_answers_who_is_but_not_who_has():
    with running_gateway(local(dcc_password=SecretStr("pw"))) as (gateway, _, _, _):
        raw = RawClient(gateway.address)
        try:
            who_has = b"\x10\x07\x3d\x0b\x00main.p_sys"
            raw.send(frame(who_has, b"\x01\x00"))
            assert strip(raw.receive())[:2] == b"\x10\x01"  # I-Have
            answer, _ = raw.request(confirmed(1, 17, b"\x19\x02\x2d\x03\x00pw"))
            assert answer == bytes([0x20, 1, 17])
            raw.send(frame(who_has, b"\x01\x00"))
            raw.send(frame(WHO_IS, b"\x01\x00"))
            assert strip(raw.receive())[:2] == b"\x10\x00"  # the I-Am comes first: no I-Have
        finally:
            raw.close()


def test_reinitialize_device_takes_every_state_of_the_standard():
    with running_gateway(local(dcc_password=SecretStr("pw"))) as (gateway, _, _, _):
        raw = RawClient(gateway.address)
        try:
            # activate-changes (7): understood, refused like every other state
            answer, _ = raw.request(confirmed(1, 20, b"\x09\x07\x1d\x03\x00pw"))
            assert answer == bytes([0x50, 1, 20, 0x91, 5, 0x91, 29])
            answer, _ = raw.request(confirmed(2, 20, b"\x09\x08\x1d\x03\x00pw"))
            assert answer == bytes([0x60, 2, 8])  # undefined-enumeration
        finally:
            raw.close()


# -- confirmed COV notifications --------------------------------------------------------------


def _subscribe(client: RawClient, invoke: int, instance: int, confirmed_mode: bool = True) -> None:
    body = b"\x09\x01\x1c" + oid(AI, instance) + (b"\x29\x01" if confirmed_mode else b"\x29\x00")
    answer, _ = client.request(confirmed(invoke, 5, body + b"\x39\x3c"))
    assert answer == bytes([0x20, invoke, 5])


def test_dead_subscribers_cannot_starve_live_ones_and_no_change_is_lost(device, monkeypatch):
    monkeypatch.setattr(notifications_module, "MAX_PENDING_NOTIFICATIONS", 3)
    monkeypatch.setattr(notifications_module, "MAX_PENDING_PER_PEER", 2)
    monkeypatch.setattr(notifications_module, "APDU_TIMEOUT_MS", 60_000)
    gateway, _, dead = device
    live, late = RawClient(gateway.address), RawClient(gateway.address)
    try:
        for k, instance in enumerate((1000, 1001, 1002)):
            _subscribe(dead, 10 + k, instance)
        pending = gateway._device.notifications._pending
        assert len(pending) == 2  # two unanswered per peer; the third waits
        _subscribe(live, 10, 1000)
        first = strip(live.receive())
        assert first[:2] == b"\x00\x05" and first[3] == 1  # its notification came at once
        _subscribe(late, 10, 1000)  # 3 unanswered in all: this one's has to wait
        live.send(frame(bytes([0x20, first[2], 1]), b"\x01\x00"))  # acknowledged
        data = late.receive(5.0)  # sent at a later check, not lost
        assert data is not None and strip(data)[:2] == b"\x00\x05"
    finally:
        live.close()
        late.close()


def test_subscriptions_whose_notifications_keep_failing_end(device, monkeypatch):
    monkeypatch.setattr(notifications_module, "APDU_TIMEOUT_MS", 30)
    gateway, _, dead = device
    _subscribe(dead, 10, 1000)
    notifications = gateway._device.notifications
    wait_until(lambda: len(notifications.cov) == 0, timeout_s=15.0)
    assert notifications.reaped == 1
    assert notifications.lost == notifications_module.MAX_GIVE_UPS


def test_a_full_subscription_table_is_a_resources_error(device):
    gateway, _, raw = device
    gateway._device.notifications.cov.limit = 1
    _subscribe(raw, 10, 1000, confirmed_mode=False)
    body = b"\x09\x01\x1c" + oid(AI, 1001) + b"\x29\x00\x39\x3c"
    answer, _ = raw.request(confirmed(11, 5, body))
    assert answer == bytes([0x50, 11, 5, 0x91, 3, 0x91, 19])  # no-space-to-add-list-element


# -- the BBMD ---------------------------------------------------------------------------------


def test_i_am_goes_through_the_bbmd_once_registered_and_on_a_new_identity():
    bbmd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bbmd.bind(("127.0.0.1", 0))
    bbmd.settimeout(3)
    port = bbmd.getsockname()[1]
    try:
        config = local(bbmd_address=f"127.0.0.1:{port}", bbmd_ttl_s=60)
        with running_gateway(config) as (gateway, _, _, _):
            data, source = bbmd.recvfrom(100)
            assert data[:2] == b"\x81\x05"  # Register-Foreign-Device
            bbmd.sendto(bytes([0x81, 0x00, 0x00, 0x06, 0x00, 0x00]), source)
            data, _ = bbmd.recvfrom(100)
            assert data[:2] == b"\x81\x09"  # Distribute-Broadcast-To-Network
            assert data[4:8] == b"\x01\x00\x10\x00"  # an I-Am
            gateway.apply(config.model_copy(update={"location": "roof"}), LOADS, IDENTITY)
            gateway.apply(config.model_copy(update={"device_instance": 4242}), LOADS, IDENTITY)
            data, _ = bbmd.recvfrom(100)  # the location changed nothing clients see
            assert data[:2] == b"\x81\x09"
            assert data[8:13] == b"\xc4" + oid(DEVICE, 4242)
    finally:
        bbmd.close()


def test_a_lost_renewal_is_retried_soon_and_the_registration_kept(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(registration_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    sent: list[float] = []
    reg = Registration(("10.0.0.1", 47808), 300, lambda data, addr: sent.append(clock[0]))

    def run_until(t: float) -> None:
        while clock[0] < t:
            clock[0] += 1.0
            reg.register()

    reg.register()
    assert reg.result(0) is True  # newly registered
    run_until(1150.0)  # the renewal at half the time-to-live; its answer is lost
    assert sent == [1000.0, 1150.0]
    run_until(1180.0)
    assert sent[2] - sent[1] <= 30.0  # retried soon, not a half time-to-live later
    assert reg.registered and "unanswered" in reg.detail
    run_until(1330.0)  # the BBMD keeps the entry for its time-to-live and 30 s
    assert reg.registered
    run_until(1331.0)
    assert not reg.registered and "ran out" in reg.detail
    assert reg.result(0) is True
    assert reg.registered


def test_the_bbmd_name_is_looked_up_without_stalling_the_device(monkeypatch):
    entered, release = threading.Event(), threading.Event()
    real = socket.getaddrinfo

    def slow(host, *args, **kwargs):
        if host == "bbmd.invalid":
            entered.set()
            release.wait(10)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    with running_gateway(local()) as (gateway, _, _, _):
        raw = RawClient(gateway.address)
        config = gateway._setup.config.model_copy(update={"bbmd_address": "bbmd.invalid"})
        applying = threading.Thread(target=gateway.apply, args=(config, LOADS, IDENTITY))
        try:
            applying.start()
            assert entered.wait(5)
            answer, _ = raw.request(confirmed(1, 12, rp_body(AI, 1000, 85)))
            assert answer[0] == 0x30  # answered while the name is being looked up
            assert applying.is_alive()
        finally:
            release.set()
            applying.join(10)
            raw.close()
        assert "unknown host" in gateway.health()[1].detail


# -- the gateway --------------------------------------------------------------------------------


def test_the_periodic_work_goes_on_after_a_failure(device, caplog):
    gateway, _, _ = device
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("broken")

    caplog.set_level(logging.ERROR, logger="emsbox.gateways.bacnet")
    gateway._device.notifications.check_all = broken
    wait_until(lambda: len(calls) >= 3, timeout_s=10.0)
    failures = [r for r in caplog.records if "periodic work failed" in r.getMessage()]
    assert len(failures) == 1


def test_apply_after_stop_does_nothing():
    with running_gateway(local()) as (gateway, _, _, _):
        gateway.stop()
        gateway.apply(local(location="x"), LOADS, IDENTITY)
        gateway.stop()
