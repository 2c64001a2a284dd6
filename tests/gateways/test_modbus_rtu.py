"""The Modbus RTU slave over a real serial line (two pseudo-terminals joined by socat), read
by mbpoll and pysunspec2; and the RTU framing on its own."""

import subprocess
import time
from concurrent.futures import Future

import pytest
import serial
from modbus_support import HVAC, IDENTITY, MAIN, reading
from sunspec2.modbus.client import SunSpecModbusClientDeviceRTU

from emsbox.bus import Bus
from emsbox.gateways.modbus.config import ModbusConfig
from emsbox.gateways.modbus.image import NATIVE
from emsbox.gateways.modbus.rtu import crc16, response, split_requests, with_crc
from emsbox.gateways.modbus.server import ListenError, ModbusGateway

NATIVE_AT = {p.name: 30000 + p.address for p in NATIVE}


def test_the_crc_is_the_specifications():
    # The example of the Modbus over Serial Line specification: read 10 registers at 0 of 1.
    assert with_crc(bytes.fromhex("01030000000a")) == bytes.fromhex("01030000000ac5cd")
    assert crc16(b"") == 0xFFFF


def test_requests_back_to_back_are_told_apart_and_bad_ones_dropped():
    a = with_crc(bytes.fromhex("010375300002"))  # FC 3, 2 registers at 30000
    b = with_crc(bytes.fromhex("020475300002"))
    write = with_crc(bytes.fromhex("011000000001020007"))  # FC 16: counted length
    frames, dropped = split_requests(a + b + write)
    assert [(f.address, f.pdu[0]) for f in frames] == [(1, 3), (2, 4), (1, 16)] and dropped == 0
    corrupt = bytearray(a)
    corrupt[3] ^= 0xFF
    assert split_requests(bytes(corrupt)) == ([], 1)
    assert split_requests(b"\x01\x03") == ([], 1)
    odd = with_crc(bytes.fromhex("01410203"))  # an unknown function: alone in its burst
    assert [f.pdu for f in split_requests(odd)[0]] == [bytes.fromhex("410203")]


def test_a_response_carries_the_address_and_crc():
    assert response(7, b"\x83\x02") == with_crc(b"\x07\x83\x02")


def mbpoll_rtu(port, *args: str) -> subprocess.CompletedProcess:
    """mbpoll over the line, once."""
    return subprocess.run(
        ["mbpoll", "-m", "rtu", "-b", "9600", "-P", "even", "-1", "-o", "2", *args, str(port)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _values(out: subprocess.CompletedProcess) -> list[str]:
    assert out.returncode == 0, out.stdout + out.stderr
    return [x.split(":", 1)[1].strip() for x in out.stdout.splitlines() if x.startswith("[")]


def test_mbpoll_reads_each_load_at_its_slave_address(rtu):
    gateway, port = rtu
    r = reading()
    first = str(NATIVE_AT["v_l1"] + 1)
    values = _values(mbpoll_rtu(port, "-a", "5", "-t", "4:float", "-B", "-r", first, "-c", "3"))
    assert [float(v) for v in values] == pytest.approx(
        [r.values["v_l1"], r.values["v_l2"], r.values["v_l3"]], rel=1e-5
    )
    p_sys = str(NATIVE_AT["p_sys"] + 1)
    hvac = _values(mbpoll_rtu(port, "-a", "6", "-t", "3:float", "-B", "-r", p_sys))
    assert float(hvac[0]) == pytest.approx(r.values["p_sys"], rel=1e-5)
    # Another slave's address is left alone: the client times out.
    other = mbpoll_rtu(port, "-a", "4", "-r", "40001")
    assert other.returncode != 0 and "timed out" in (other.stdout + other.stderr).lower()
    # A read outside the maps gets its exception.
    refused = mbpoll_rtu(port, "-a", "5", "-r", "200")
    assert "Illegal data address" in refused.stdout + refused.stderr
    (tcp_rtu,) = gateway.health()
    assert tcp_rtu.name == "Modbus RTU" and tcp_rtu.healthy and "requests" in tcp_rtu.detail


def test_pysunspec2_scans_the_sunspec_map_over_the_line(rtu):
    _, port = rtu
    device = SunSpecModbusClientDeviceRTU(slave_id=5, name=str(port), baudrate=9600, parity="E")
    try:
        device.scan()
        assert device.models[1][0].Opt.value == "main"
        meter = device.models[213][0]
        assert meter.W.value == pytest.approx(reading().values["p_sys"], rel=1e-6)
    finally:
        device.close()


def test_noise_on_the_line_is_dropped_and_requests_after_it_answered(rtu):
    gateway, port = rtu
    with serial.Serial(str(port), 9600, parity=serial.PARITY_EVEN, timeout=2) as client:
        client.write(b"\x05\x03\x00garbage\xff\xff")
        time.sleep(0.1)  # a silence ends the bad frame
        client.write(with_crc(bytes.fromhex("05039c400002")))  # SunS at 40000
        assert client.read(9) == with_crc(b"\x05\x03\x04SunS")
        client.write(with_crc(bytes.fromhex("00039c400002")))  # a broadcast: no answer
        assert client.read(1) == b""
    (state,) = gateway.health()
    assert "1 bad frames" in state.detail


def test_a_serial_port_that_cannot_be_opened_is_refused_by_its_field(tmp_path):
    gateway = ModbusGateway(Bus())
    try:
        missing = ModbusConfig(rtu_enabled=True, rtu_serial_port=str(tmp_path / "ttyNone"))
        with pytest.raises(ListenError, match="cannot open") as refused:
            gateway.apply(missing, [MAIN], IDENTITY)
        assert refused.value.key == "modbus.rtu_serial_port"
        assert gateway.health() == []
    finally:
        gateway.stop()


def test_a_write_over_the_line_commands_the_load_when_writes_are_on(line):
    ours, theirs = line
    asked = []

    def commander(load, action, tariff, who):
        asked.append((load, action, tariff, who))
        done = Future()
        done.set_result({})
        return done

    gateway = ModbusGateway(Bus(), commander)
    config = ModbusConfig(rtu_enabled=True, rtu_serial_port=str(ours), writes_enabled=True)
    try:
        gateway.apply(config, [MAIN, HVAC], IDENTITY)
        with serial.Serial(str(theirs), 9600, parity=serial.PARITY_EVEN, timeout=2) as client:
            client.write(with_crc(bytes.fromhex("020698590002")))  # tariff 2 on hvac
            assert client.read(8) == with_crc(bytes.fromhex("020698590002"))
            client.write(with_crc(bytes.fromhex("020698580007")))  # no such command
            assert client.read(5) == with_crc(bytes.fromhex("028603"))
        assert asked == [("hvac", "tariff", 2, f"modbus RTU {ours}")]
    finally:
        gateway.stop()
