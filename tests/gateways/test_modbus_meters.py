"""Meters polled over Modbus: emsbox's own gateway serves as the meter (a real Modbus server,
over TCP and over a serial line made by socat); what the client decodes is the reading."""

import socket
import time

import pytest
import serial
from modbus_support import reading, serving

from emsbox.bus import Bus
from emsbox.gateways.modbus.client import ModbusClientError, RtuClient, SerialLine, TcpClient
from emsbox.gateways.modbus.config import ModbusConfig
from emsbox.gateways.modbus.meters import CarloGavazziMeter, MeterModel, SunSpecMeter, meter
from emsbox.gateways.modbus.sunspec_models import SunSpecModels
from emsbox.loads import ModbusMeterSettings
from emsbox.samples import Wiring
from emsbox.service.polled import PolledMeterAcquisition, SerialLines

COMMON = ("v_l1", "v_l2", "v_l3", "i_l1", "p_sys", "q_sys", "s_sys", "pf_sys", "freq")
COUNTERS = ("kwh_imp", "kwh_exp", "kwh_imp_l1")


def _client(gateway) -> TcpClient:
    return TcpClient("127.0.0.1", gateway.address[1], timeout_s=2)


@pytest.mark.parametrize(
    ("models", "rel", "absolute"),
    [(SunSpecModels.FLOAT, 1e-6, 0.0), (SunSpecModels.INT, 0.0, 10.0)],
)
def test_a_sunspec_meter_reads_as_the_reading_it_serves(models, rel, absolute):
    config = ModbusConfig(
        tcp_enabled=True, bind_address="127.0.0.1", tcp_port=0, sunspec_models=models
    )
    with serving(config) as gateway:
        client = _client(gateway)
        values = SunSpecMeter(client, 1).poll()
        client.close()
    r = reading()
    for name in COMMON:
        # The integer models round to their scale factors (10 W with the main load's rating).
        assert values[name] == pytest.approx(r.values[name], rel=rel, abs=absolute), name
    for name in COUNTERS:
        assert values[name] == pytest.approx(r.counters[name], rel=1e-6, abs=1e-3), name


def test_a_carlo_gavazzi_meter_reads_as_the_reading_it_serves():
    with serving() as gateway:
        client = _client(gateway)
        values = meter(MeterModel.CARLO_GAVAZZI, client, 1).poll()
        client.close()
    r = reading()
    # Volts and watts in tenths, amperes in thousandths, kWh in tenths.
    assert values["v_l1"] == pytest.approx(r.values["v_l1"], abs=0.05)
    assert values["i_l1"] == pytest.approx(r.values["i_l1"], abs=0.0005)
    assert values["p_sys"] == pytest.approx(r.values["p_sys"], abs=0.05)
    assert values["pf_sys"] == pytest.approx(r.values["pf_sys"], abs=0.0005)
    assert values["kwh_exp"] == pytest.approx(r.counters["kwh_exp"], abs=0.05)


def test_two_meters_share_one_serial_line(rtu):
    _, theirs = rtu  # the gateway answers as slaves 5 (main) and 6 (hvac)
    port = serial.Serial(str(theirs), 9600, parity=serial.PARITY_EVEN, timeout=0)
    shared = SerialLine(port)
    try:
        main = SunSpecMeter(RtuClient(shared, timeout_s=1), 5)
        hvac = CarloGavazziMeter(RtuClient(shared, timeout_s=1), 6)
        for _ in range(3):
            assert main.poll()["p_sys"] == pytest.approx(reading().values["p_sys"], rel=1e-6)
            assert hvac.poll()["v_l1"] == pytest.approx(reading().values["v_l1"], abs=0.05)
        absent = CarloGavazziMeter(RtuClient(shared, timeout_s=0.3), 9)
        with pytest.raises(ModbusClientError, match=r"slave 9: no answer within 0\.3 s"):
            absent.poll()
        # The line works on after a meter that did not answer.
        assert hvac.poll()["i_l1"] == pytest.approx(reading().values["i_l1"], abs=0.0005)
    finally:
        port.close()


def test_failures_are_one_clear_error_each():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(ModbusClientError, match="refused"):
        TcpClient("127.0.0.1", port, timeout_s=1).read(1, 0, 2)
    with serving() as gateway:
        client = _client(gateway)
        with pytest.raises(ModbusClientError, match="exception 0B") as refused:
            client.read(9, 40000, 2)
        assert refused.value.code == 0x0B
        with pytest.raises(ModbusClientError, match="exception 02"):
            client.read(1, 100, 2)
        with pytest.raises(ModbusClientError, match="no SunSpec map"):
            SunSpecMeter(client, 9).poll()
        # The connection is made anew after a failure.
        assert client.read(1, 40000, 2) == b"SunS"
        client.close()
    with socket.socket() as silent:  # listens, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        client = TcpClient("127.0.0.1", silent.getsockname()[1], timeout_s=0.3)
        with pytest.raises(ModbusClientError, match=r"no answer within 0\.3 s"):
            client.read(1, 0, 2)
        client.close()


def test_loads_read_from_two_meters_on_one_serial_line(rtu):
    _, theirs = rtu  # slaves 5 (main, 3P4W) and 6 (hvac, 1P2W)
    bus, lines = Bus(), SerialLines()
    settings = {"serial_port": str(theirs), "parity": "even", "timeout_s": 1.0}
    polled = [
        PolledMeterAcquisition(
            name,
            wiring,
            ModbusMeterSettings(model=model, unit_id=unit, **settings),
            lines,
            bus,
            interval_s=0.5,
        )
        for name, wiring, model, unit in (
            ("a", Wiring.THREE_PHASE_4W, "sunspec", 5),
            ("b", Wiring.SINGLE_PHASE, "carlo_gavazzi", 6),
        )
    ]
    try:
        for acquisition in polled:
            acquisition.start()
        deadline = time.monotonic() + 10
        while bus.latest("a") is None or bus.latest("b") is None:
            assert time.monotonic() < deadline, [p.last_error for p in polled]
            time.sleep(0.05)
        a, b = bus.latest("a"), bus.latest("b")
        assert a.values["v_l2"] == pytest.approx(reading().values["v_l2"], rel=1e-6)
        assert b.values["v_l1"] == pytest.approx(reading().values["v_l1"], abs=0.05)
        assert "v_l2" not in b.values  # a single-phase load keeps its own phase only
        assert b.counters["kwh_imp"] == pytest.approx(reading().counters["kwh_imp"], abs=0.05)
        assert all(p.healthy() for p in polled)
    finally:
        for acquisition in polled:
            acquisition.stop()
        lines.close()
