"""Robustness of the BACnet/IP device: thousands of malformed datagrams and a Who-Is flood,
after which it still answers as before."""

from __future__ import annotations

import logging
import random
import struct
import time

import pytest
from bacnet_support import RawClient, confirmed, frame, oid, rp_body, running_gateway

AI = 0
FUZZ_DATAGRAMS = 12_000

VALID_APDUS = [
    confirmed(1, 12, rp_body(AI, 1000, 85)),
    confirmed(2, 12, rp_body(8, 4194303, 76)),
    confirmed(
        3,
        14,
        b"\x0c"
        + oid(AI, 1000)
        + b"\x1e\x09\x08\x1f"
        + b"\x0c"
        + oid(2, 1039)
        + b"\x1e\x09\x55\x1f",
    ),
    confirmed(4, 15, b"\x0c" + oid(AI, 1000) + b"\x19\x55\x3e\x44\x43\x66\x00\x00\x3f"),
    confirmed(5, 16, b"\x0c" + oid(AI, 1000) + b"\x1e\x09\x55\x2e\x44\x3f\x80\x00\x00\x2f\x1f"),
    confirmed(6, 5, b"\x09\x01\x1c" + oid(AI, 1000) + b"\x29\x00\x39\x3c"),
    confirmed(7, 17, b"\x19\x01\x2d\x07\x00secret"),
    confirmed(8, 20, b"\x09\x01"),
    confirmed(9, 26, b"\x0c" + oid(AI, 1000) + b"\x19\x55"),
    bytes([0x0C, 0x05, 10, 0, 4, 12]) + rp_body(AI, 1000, 85),
    b"\x10\x08",
    b"\x10\x08\x0a\x00\x01\x1a\xff\xff",
    b"\x10\x07\x3d\x0a\x00main.v_l1",
    b"\x10\x07\x2c" + oid(3, 0),
    b"\x10\x00\xc4\x02\x00\x02\xbc\x22\x05\xc4\x91\x00\x21\x03",
    b"\x20\x01\x0c",
    b"\x30\x01\x0c\x0c" + oid(AI, 1) + b"\x19\x55\x3e\x44\x43\x66\x00\x00\x3f",
    b"\x40\x01\x00\x02",
    b"\x42\x77\x05\x10",
    b"\x50\x01\x0c\x91\x02\x91\x20",
    b"\x60\x01\x09",
    b"\x70\x01\x04",
]
NPDUS = [
    b"\x01\x04",
    b"\x01\x00",
    b"\x01\x20\xff\xff\x00\xff",
    b"\x01\x24\x00\x05\x01\x07\xff",
    b"\x01\x08\x00\x05\x06\x7f\x00\x00\x01\xba\xc0",
    b"\x01\x80\x00",
    b"\x01\x80\x01\x00\x05",
    b"\x01\x80\x80\x01\x02",
]
FUNCTIONS = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0xFF]


def bvlc(function: int, payload: bytes, length: int | None = None) -> bytes:
    size = 4 + len(payload) if length is None else length
    return bytes([0x81, function]) + struct.pack(">H", size & 0xFFFF) + payload


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if op == 0 and out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif op == 2 and out:
            del out[rng.randrange(len(out)) :]
        elif op == 3:
            at = rng.randrange(len(out) + 1)
            out[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 4:
            # a huge length: extended length tags of 2^16 / 2^32 octets
            at = rng.randrange(len(out) + 1)
            out[at:at] = rng.choice(
                [b"\x75\xff\xff\xff\xff\xff", b"\x65\xfe\xff\xff", b"\x0d\xff\x7f\xff\xff\xff"]
            )
        elif op == 5:
            out += bytes([0x3E] * rng.randint(1, 50))  # unbalanced opening tags
        elif op == 6 and out:
            at = rng.randrange(len(out))
            out[at:at] = out[at:]  # repeats
    return bytes(out)


def fuzz_datagram(rng: random.Random) -> bytes:
    kind = rng.randrange(8)
    apdu = rng.choice(VALID_APDUS)
    npdu = rng.choice(NPDUS)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 60))
    if kind == 1:
        return bvlc(0x0A, npdu + mutate(rng, apdu))
    if kind == 2:
        return bvlc(0x0A, mutate(rng, npdu) + apdu)
    if kind == 3:
        return mutate(rng, frame(apdu, npdu))
    if kind == 4:  # a wrong BVLC length
        payload = npdu + apdu
        return bvlc(rng.choice(FUNCTIONS), payload, rng.choice([0, 3, len(payload), 0xFFFF]))
    if kind == 5:  # truncated headers
        whole = frame(apdu, npdu)
        return whole[: rng.randint(0, min(len(whole), 12))]
    if kind == 6:  # segment ACKs, aborts and replies for nothing
        return frame(
            bytes(
                [
                    rng.choice([0x40, 0x42, 0x70, 0x20, 0x30, 0x50, 0x60]),
                    rng.randrange(256),
                    rng.randrange(256),
                    rng.randrange(256),
                ]
            ),
            b"\x01\x00",
        )
    return bvlc(rng.choice(FUNCTIONS), mutate(rng, npdu + apdu))


def assert_still_answers(raw: RawClient) -> None:
    raw.drain()
    answer, _ = raw.request(confirmed(99, 12, rp_body(AI, 1000, 85)))
    assert answer[:3] == bytes([0x30, 99, 12])
    whole, _ = raw.request(confirmed(98, 12, rp_body(8, 4194303, 76)))
    assert whole[0] == 0x30


def test_malformed_datagrams_never_stop_the_device(caplog):
    caplog.set_level(logging.INFO, logger="emsbox.gateways.bacnet")
    rng = random.Random(20261203)
    with running_gateway() as (gateway, _, _, _):
        raw = RawClient(gateway.address)
        fuzzer = RawClient(gateway.address)
        try:
            assert_still_answers(raw)
            device = gateway._device
            before = device.counters.datagrams
            start = time.monotonic()
            for count in range(FUZZ_DATAGRAMS):
                fuzzer.send(fuzz_datagram(rng))
                if count % 100 == 99:
                    fuzzer.drain_quick()
                    # let the device keep up: the test is about handling, not kernel drops
                    while device.counters.datagrams - before < count - 200:
                        time.sleep(0.001)
            assert time.monotonic() - start < 40
            while device.counters.datagrams - before < FUZZ_DATAGRAMS - 50:
                time.sleep(0.01)
            assert device.counters.datagrams - before >= 10_000
            assert device.counters.malformed > 1000
            assert_still_answers(raw)
            health = gateway.health()[0]
            assert health.healthy and "malformed" in health.detail
        finally:
            raw.close()
            fuzzer.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    malformed_lines = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(malformed_lines) <= 2  # one line per source per minute, not one per datagram


def test_a_who_is_flood_is_answered_or_dropped_without_hanging():
    with running_gateway() as (gateway, _, _, _):
        raw = RawClient(gateway.address)
        flooder = RawClient(gateway.address)
        try:
            who_is = frame(b"\x10\x08", b"\x01\x00")
            for _ in range(5000):
                flooder.send(who_is)
            answered = 0
            while flooder.receive(0.3) is not None:
                answered += 1
            assert 1 <= answered <= 1000  # rate-limited, not one each
            started = time.monotonic()
            assert_still_answers(raw)
            assert time.monotonic() - started < 1.0
            assert "over the rate limit" in gateway.health()[0].detail
        finally:
            raw.close()
            flooder.close()


@pytest.mark.parametrize("seed", range(2))
def test_mutated_requests_from_the_standard_get_an_answer_or_nothing(seed):
    """Every mutated confirmed request is answered by one APDU at most, of a known type."""
    rng = random.Random(seed)
    with running_gateway() as (gateway, _, _, _):
        raw = RawClient(gateway.address)
        try:
            for invoke in range(150):
                apdu = bytearray(rng.choice(VALID_APDUS[:9]))
                apdu[2] = invoke % 256
                body = mutate(rng, bytes(apdu[4:]))
                raw.send(frame(bytes(apdu[:4]) + body))
                data = raw.receive(0.1)
                while data is not None:
                    assert data[:2] in (b"\x81\x0a", b"\x81\x0b")
                    reply = data[6:]
                    assert reply[0] >> 4 in (0, 1, 2, 3, 5, 6, 7)
                    data = raw.receive(0.005)
            assert_still_answers(raw)
        finally:
            raw.close()
