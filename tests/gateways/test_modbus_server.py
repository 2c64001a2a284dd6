"""The Modbus TCP server with real clients (mbpoll, pysunspec2) and raw sockets: right
answers, and no stream a client sends can stop it or hold up the others."""

import contextlib
import random
import shutil
import socket
import struct
import subprocess
import threading
import time
from concurrent.futures import Future

import pytest
from modbus_support import (
    IDENTITY,
    MAIN,
    connect,
    is_closed,
    read_pdu,
    reading,
    recv_frame,
    request,
    serving,
)
from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

from emsbox.bus import Bus
from emsbox.gateways.modbus import server as server_module
from emsbox.gateways.modbus.config import ModbusConfig
from emsbox.gateways.modbus.image import NATIVE
from emsbox.gateways.modbus.server import ListenError, ModbusGateway
from emsbox.gateways.modbus.sunspec_models import SunSpecModels

MBPOLL = shutil.which("mbpoll")
NATIVE_AT = {p.name: 30000 + p.address for p in NATIVE}


@pytest.fixture(scope="module")
def gateway():
    with serving() as g:
        yield g


def mbpoll(gateway, *args: str) -> list[str]:
    """mbpoll's values, one line each (``[address]: value``) after polling once."""
    assert MBPOLL, "mbpoll is missing: scripts/test installs it"
    port = str(gateway.address[1])
    out = subprocess.run(
        [MBPOLL, "-m", "tcp", "-p", port, "-1", "-o", "2", *args, "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return [
        line.split(":", 1)[1].strip() for line in out.stdout.splitlines() if line.startswith("[")
    ]


def test_mbpoll_reads_the_native_floats_of_each_unit(gateway):
    r = reading()
    # mbpoll numbers registers from 1; -B: the high word first.
    first = NATIVE_AT["v_l1"] + 1
    values = mbpoll(gateway, "-a", "1", "-t", "4:float", "-B", "-r", str(first), "-c", "4")
    assert [float(v) for v in values] == pytest.approx(
        [r.values[n] for n in ("v_l1", "v_l2", "v_l3", "v_ln_sys")], rel=1e-5
    )
    # FC 4 (input registers) answers the same; unit 2 is the second load, single phase.
    p = mbpoll(gateway, "-a", "2", "-t", "3:float", "-B", "-r", str(NATIVE_AT["p_sys"] + 1))
    assert float(p[0]) == pytest.approx(r.values["p_sys"], rel=1e-5)
    missing = mbpoll(gateway, "-a", "2", "-t", "3:float", "-B", "-r", str(NATIVE_AT["v_l2"] + 1))
    assert missing == ["nan"]


def test_mbpoll_reads_the_sunspec_marker_and_an_unknown_unit_fails(gateway):
    assert mbpoll(gateway, "-a", "1", "-t", "4:hex", "-r", "40001", "-c", "4") == [
        "0x5375",
        "0x6E53",
        "0x0001",
        "0x0042",
    ]
    port = str(gateway.address[1])
    out = subprocess.run(
        [MBPOLL, "-m", "tcp", "-p", port, "-1", "-a", "9", "-r", "40001", "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert "Target device failed to respond" in out.stderr  # exception 0B, at once


@pytest.mark.parametrize(("unit", "load"), [(1, "main"), (2, "hvac")])
def test_pysunspec2_scans_the_sunspec_map_of_every_unit(gateway, unit, load):
    device = SunSpecModbusClientDeviceTCP(
        slave_id=unit, ipaddr="127.0.0.1", ipport=gateway.address[1]
    )
    try:
        device.scan()
        common = device.models[1][0]
        assert common.Mn.value == "emsbox"
        assert common.Opt.value == load
        assert common.SN.value == f"{IDENTITY.serial}-{unit}"
        model = 213 if unit == 1 else 211
        meter = device.models[model][0]
        r = reading(load)
        assert meter.W.value == pytest.approx(r.values["p_sys"], rel=1e-6)
        assert meter.Hz.value == pytest.approx(r.values["freq"], rel=1e-6)
        assert meter.TotWhExp.value == pytest.approx(1000 * r.counters["kwh_exp"], rel=1e-6)
    finally:
        device.close()


def test_pysunspec2_reads_the_integer_models_with_their_scale_factors():
    config = ModbusConfig(
        tcp_enabled=True, bind_address="127.0.0.1", tcp_port=0, sunspec_models=SunSpecModels.INT
    )
    with serving(config) as g:
        device = SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=g.address[1])
        try:
            device.scan()
            meter = device.models[203][0]
            r = reading()
            # cvalue applies the scale factor: within the resolution the factor gives.
            assert meter.PhVphA.cvalue == pytest.approx(r.values["v_l1"], abs=0.05)
            assert meter.W.cvalue == pytest.approx(r.values["p_sys"], abs=5)
            assert meter.PF.cvalue == pytest.approx(100 * r.values["pf_sys"], abs=0.005)
            assert meter.TotWhImp.cvalue == round(1000 * r.counters["kwh_imp"])
        finally:
            device.close()


def test_pipelined_and_trickled_requests_are_all_answered_in_order(gateway):
    with connect(gateway) as sock:
        sock.sendall(b"".join(request(t, 1, read_pdu(3, 40000, 2)) for t in range(1, 6)))
        for t in range(1, 6):
            assert recv_frame(sock) == (t, 1, b"\x03\x04SunS")
        frame = request(77, 2, read_pdu(4, 40000, 2))
        for byte in frame:  # one byte per segment
            sock.sendall(bytes([byte]))
        assert recv_frame(sock) == (77, 2, b"\x04\x04SunS")


@pytest.mark.parametrize(
    "garbage",
    [
        struct.pack(">HHHB", 1, 1, 6, 1) + read_pdu(3, 40000, 1),  # protocol id 1
        struct.pack(">HHHB", 1, 0, 0, 1),  # length 0
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
def test_a_malformed_header_closes_that_connection_only(gateway, garbage):
    with connect(gateway) as bad, connect(gateway) as good:
        bad.sendall(garbage)
        assert is_closed(bad)
        good.sendall(request(9, 1, read_pdu(3, 40000, 2)))
        assert recv_frame(good) == (9, 1, b"\x03\x04SunS")


def test_a_frame_left_incomplete_is_dropped_after_the_frame_timeout(monkeypatch):
    monkeypatch.setattr(server_module, "FRAME_TIMEOUT_S", 0.3)
    with serving() as g, connect(g) as sock:
        sock.sendall(request(1, 1, read_pdu(3, 40000, 2))[:8])
        assert is_closed(sock, timeout_s=3.0)


def test_a_silent_connection_is_closed_after_the_idle_timeout():
    config = ModbusConfig(tcp_enabled=True, bind_address="127.0.0.1", tcp_port=0, idle_timeout_s=1)
    with serving(config) as g, connect(g) as sock:
        sock.sendall(request(1, 1, read_pdu(3, 40000, 2)))
        recv_frame(sock)
        assert is_closed(sock, timeout_s=4.0)


def test_fifty_clients_at_once_are_answered_and_one_too_many_is_closed():
    config = ModbusConfig(
        tcp_enabled=True, bind_address="127.0.0.1", tcp_port=0, max_connections=50
    )
    with serving(config) as g:
        clients = [connect(g) for _ in range(50)]
        try:
            extra = connect(g)
            assert is_closed(extra)
            extra.close()
            for t, sock in enumerate(clients):
                sock.sendall(request(t, 1, read_pdu(3, 40000, 2)))
            for t, sock in enumerate(clients):
                assert recv_frame(sock) == (t, 1, b"\x03\x04SunS")
        finally:
            for sock in clients:
                sock.close()


def test_a_client_that_never_reads_its_answers_does_not_hold_up_the_others(gateway):
    with connect(gateway) as greedy, connect(gateway) as other:
        greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        burst = request(1, 1, read_pdu(3, 30000, 125)) * 2000  # 500 kB of answers
        sender = threading.Thread(target=lambda: _send_quietly(greedy, burst), daemon=True)
        sender.start()
        for t in range(20):
            other.sendall(request(t, 1, read_pdu(3, 40000, 2)))
            assert recv_frame(other) == (t, 1, b"\x03\x04SunS")


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the socket is closed at the end of the test
        sock.sendall(data)


EXCEPTIONS = {0x01, 0x02, 0x03, 0x0B}


def test_eight_thousand_well_framed_random_requests_get_their_answer_or_exception(gateway):
    rng = random.Random(20261203)
    with connect(gateway) as sock:
        for t in range(8000):
            if t % 2:  # a read with random function, address and quantity
                pdu = read_pdu(rng.choice((3, 4)), rng.randrange(65536), rng.randrange(65536))
            else:  # any PDU at all, 1 to 253 bytes
                pdu = rng.randbytes(rng.choice((1, 2, 5, rng.randrange(1, 254))))
            unit = rng.choice((0, 1, 2, 3, 255))
            sock.sendall(request(t, unit, pdu))
            transaction, answered_unit, answer = recv_frame(sock)
            assert (transaction, answered_unit) == (t, unit)
            if answer[0] & 0x80:
                assert answer[0] == (pdu[0] | 0x80) and answer[1] in EXCEPTIONS, (pdu, answer)
            else:  # a read inside a map: its registers
                assert answer[0] == pdu[0] in (3, 4) and answer[1] == 2 * pdu[4], (pdu, answer)


def test_two_thousand_unframeable_streams_close_their_connection_and_nothing_else(gateway):
    rng = random.Random(3)
    for k in range(2000):
        if k % 3 == 0:  # a header no client sends
            junk = struct.pack(">HHHB", k, rng.randrange(1, 65536), 6, 1) + rng.randbytes(6)
        elif k % 3 == 1:  # a length beyond any PDU
            junk = struct.pack(">HHHB", k, 0, rng.randrange(255, 65536), 1) + rng.randbytes(6)
        else:  # noise
            junk = rng.randbytes(rng.randrange(7, 300))
        with connect(gateway) as sock:
            sock.sendall(junk)
            sock.shutdown(socket.SHUT_WR)  # a truncated frame ends with the stream
            assert is_closed(sock)
        if k % 250 == 0:
            with connect(gateway) as probe:
                probe.sendall(request(1, 1, read_pdu(3, 40000, 2)))
                assert recv_frame(probe) == (1, 1, b"\x03\x04SunS")
    (tcp,) = gateway.health()
    assert tcp.healthy and tcp.detail.startswith("TCP 127.0.0.1:")


def test_the_server_starts_stops_and_moves_while_the_service_runs():
    bus = Bus()
    bus.publish(reading())
    gateway = ModbusGateway(bus)
    try:
        off = ModbusConfig()
        gateway.apply(off, [MAIN], IDENTITY)
        assert gateway.address is None and gateway.health() == []
        on = ModbusConfig(tcp_enabled=True, bind_address="127.0.0.1", tcp_port=0)
        gateway.apply(on, [MAIN], IDENTITY)
        port = gateway.address[1]
        with connect(gateway) as sock:
            sock.sendall(request(1, 1, read_pdu(3, 40000, 2)))
            assert recv_frame(sock) == (1, 1, b"\x03\x04SunS")
        # A port another program holds is refused; the running server stays.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            busy = on.model_copy(update={"tcp_port": taken.getsockname()[1]})
            with pytest.raises(ListenError, match=r"cannot listen on 127\.0\.0\.1"):
                gateway.apply(busy, [MAIN], IDENTITY)
        assert gateway.address[1] == port
        with connect(gateway) as sock:
            sock.sendall(request(2, 1, read_pdu(3, 40000, 2)))
            assert recv_frame(sock) == (2, 1, b"\x03\x04SunS")
        # The same port on every address: the old socket makes way for the new one.
        everywhere = on.model_copy(update={"bind_address": "0.0.0.0", "tcp_port": port})
        gateway.apply(everywhere, [MAIN], IDENTITY)
        assert gateway.address == ("0.0.0.0", port)
        with connect(gateway) as sock:
            sock.sendall(request(3, 1, read_pdu(3, 40000, 2)))
            assert recv_frame(sock) == (3, 1, b"\x03\x04SunS")
        gateway.apply(off, [MAIN], IDENTITY)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        gateway.stop()


def test_a_new_reading_is_served_at_once():
    bus = Bus()
    with serving(bus=bus) as g, connect(g) as sock:
        bus.publish(reading(p_sys=-4321.5))
        for attempt in range(200):
            sock.sendall(request(attempt, 1, read_pdu(3, NATIVE_AT["p_sys"], 2)))
            _, _, pdu = recv_frame(sock)
            if struct.unpack(">f", pdu[2:])[0] == -4321.5:
                break
            threading.Event().wait(0.01)
        else:
            pytest.fail("the new reading was not served within 2 s")


def test_mbpoll_reads_the_carlo_gavazzi_map_as_32_bit_integers(gateway):
    r = reading()
    # mbpoll's 32-bit integers are low word first unless -B: as Carlo Gavazzi sends them.
    volts = mbpoll(gateway, "-a", "1", "-t", "4:int", "-r", "1", "-c", "3")
    assert [int(v) for v in volts] == [round(10 * r.values[f"v_l{n}"]) for n in (1, 2, 3)]
    (imported,) = mbpoll(gateway, "-a", "1", "-t", "3:int", "-r", str(0x0034 + 1))
    assert int(imported) == round(10 * r.counters["kwh_imp"])
    (model,) = mbpoll(gateway, "-a", "1", "-r", str(0x000B + 1))
    assert int(model) == 1648  # EM24 Ethernet, as its drivers look for it


def test_a_write_and_the_reads_behind_it_are_answered_in_order():
    asked = []

    def slow_commander(load, action, tariff, who):
        asked.append((load, action, tariff))
        done = Future()
        threading.Timer(0.3, done.set_result, args=({},)).start()
        return done

    bus = Bus()
    bus.publish(reading())
    gateway = ModbusGateway(bus, slow_commander)
    config = ModbusConfig(
        tcp_enabled=True, bind_address="127.0.0.1", tcp_port=0, writes_enabled=True
    )
    try:
        gateway.apply(config, [MAIN], IDENTITY)
        with connect(gateway) as sock:
            write = struct.pack(">BHH", 6, 39000, 3)  # reset the partial counters
            sock.sendall(request(1, 1, write) + request(2, 1, read_pdu(3, 40000, 2)))
            assert recv_frame(sock) == (1, 1, write)
            assert recv_frame(sock) == (2, 1, b"\x03\x04SunS")
        assert asked == [("main", "reset", None)]
    finally:
        gateway.stop()


def test_an_output_write_during_a_settings_change_holds_up_neither():
    class SlowOutput:
        """The controller's output, slow to switch: the write is still on the loop when the
        settings change."""

        on = False

        def output_on(self) -> bool:
            return self.on

        def set_output(self, on: bool, requested_by: str) -> None:
            time.sleep(0.3)
            self.on = on

    def commander(load, action, tariff, who):
        done = Future()
        done.set_result({})
        return done

    bus = Bus()
    bus.publish(reading())
    gateway = ModbusGateway(bus, commander, output=SlowOutput())
    config = ModbusConfig(
        tcp_enabled=True, bind_address="127.0.0.1", tcp_port=0, writes_enabled=True
    )
    try:
        gateway.apply(config, [MAIN], IDENTITY)
        with connect(gateway) as sock:
            write = struct.pack(">BHH", 6, 39002, 1)
            sock.sendall(request(1, 1, write))
            time.sleep(0.1)  # the loop is inside set_output now
            # A changed setting that keeps the port: the server is replaced on the loop.
            gateway.apply(config.model_copy(update={"idle_timeout_s": 61.0}), [MAIN], IDENTITY)
            assert recv_frame(sock) == (1, 1, write)
        with connect(gateway) as sock:
            sock.sendall(request(2, 1, read_pdu(3, 39002, 1)))
            assert recv_frame(sock) == (2, 1, b"\x03\x02\x00\x01")
    finally:
        gateway.stop()
