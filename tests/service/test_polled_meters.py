"""Loads read from external meters over Modbus: a running service polls a real Modbus server
(emsbox's own gateway, serving another bus, plays the meter) and publishes its values."""

import socket
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateways"))
from modbus_support import IDENTITY, MAIN, reading

from emsbox.app import Service
from emsbox.bus import Bus
from emsbox.config import ConfigError, validate
from emsbox.gateways.modbus.config import ModbusConfig
from emsbox.gateways.modbus.server import ModbusGateway
from emsbox.service.acquisition import CommandError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ExternalMeter:
    """A Modbus TCP server on ``port`` answering with a fixed reading, as a meter would."""

    def __init__(self, port: int, **values: float) -> None:
        self.bus = Bus()
        self.bus.publish(reading(**values))
        self.gateway = ModbusGateway(self.bus)
        config = ModbusConfig(tcp_enabled=True, bind_address="127.0.0.1", tcp_port=port)
        self.gateway.apply(config, [MAIN], IDENTITY)

    def stop(self) -> None:
        self.gateway.stop()


def _until(check, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)
    return result


@pytest.mark.parametrize("model", ["sunspec", "carlo_gavazzi"])
def test_a_load_is_read_from_its_meter_and_reported_when_it_stops_answering(tmp_path, model):
    port = _free_port()
    meter = ExternalMeter(port, p_sys=4321.5)
    source = {"kind": "modbus", "modbus": {"model": model, "host": "127.0.0.1", "port": port}}
    config = validate({"meter": {"loads": [{"name": "pv", "source": source}]}})
    service = Service(config, tmp_path)
    service.start()
    try:
        described = {d.name: d for d in service.describe_loads()}
        assert described["pv"].source == "modbus" and list(described) == ["main", "pv"]
        polled = _until(lambda: service.bus.latest("pv"))
        expected = reading()
        assert polled.values["p_sys"] == pytest.approx(4321.5, abs=0.05)
        assert polled.values["v_l1"] == pytest.approx(expected.values["v_l1"], abs=0.05)
        assert polled.counters["kwh_imp"] == pytest.approx(expected.counters["kwh_imp"], abs=0.05)
        assert _until(lambda: service.describe_loads()[1].healthy)
        with pytest.raises(CommandError, match="external meter"):
            service.command("pv", "reset", "test").result(5)
        # The meter stops answering: the load turns unhealthy with the reason; the rest runs.
        meter.stop()
        part = _until(
            lambda: next(
                (p for p in service.health() if p.name == "acquisition pv" and not p.healthy), None
            )
        )
        assert f"127.0.0.1:{port} unit 1" in part.detail
        assert _until(lambda: service.bus.latest("main"))
        # It answers again: the load is back.
        meter = ExternalMeter(port, p_sys=-100.0)
        _until(lambda: service.bus.latest("pv").values["p_sys"] == pytest.approx(-100.0, abs=0.05))
        assert _until(lambda: service.describe_loads()[1].healthy)
    finally:
        service.stop()
        meter.stop()


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ({"kind": "modbus"}, "modbus.host or modbus.serial_port is required"),
        (
            {"kind": "modbus", "modbus": {"host": "a", "serial_port": "/dev/ttyUSB0"}},
            "not both",
        ),
    ],
)
def test_a_modbus_source_names_its_meter(source, problem):
    with pytest.raises(ConfigError, match=problem):
        validate({"meter": {"loads": [{"name": "pv", "source": source}]}})


def test_the_main_meter_cannot_be_an_external_meter():
    with pytest.raises(ConfigError, match="only extension loads"):
        validate({"meter": {"main": {"source": {"kind": "modbus", "modbus": {"host": "x"}}}}})
