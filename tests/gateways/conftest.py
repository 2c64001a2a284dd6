"""Fixtures of the Modbus tests: a serial line made of two pseudo-terminals, and a gateway
answering on it."""

import shutil
import subprocess
import time

import pytest
from modbus_support import HVAC, IDENTITY, MAIN, reading

from emsbox.bus import Bus
from emsbox.gateways.modbus.config import ModbusConfig
from emsbox.gateways.modbus.server import ModbusGateway
from emsbox.samples import Wiring


@pytest.fixture
def line(tmp_path):
    """Two pseudo-terminals joined by socat: (the gateway's end, the client's end)."""
    socat = shutil.which("socat")
    assert socat, "socat is missing: scripts/test installs it"
    ours, theirs = tmp_path / "gateway", tmp_path / "client"
    proc = subprocess.Popen(
        [socat, f"pty,raw,echo=0,link={ours}", f"pty,raw,echo=0,link={theirs}"],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not (ours.exists() and theirs.exists()):
        assert time.monotonic() < deadline, "socat made no pseudo-terminals"
        time.sleep(0.02)
    try:
        yield ours, theirs
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def rtu(line):
    """A gateway answering as slaves 5 (main) and 6 (hvac) on the line."""
    ours, theirs = line
    bus = Bus()
    bus.publish(reading())
    bus.publish(reading("hvac", Wiring.SINGLE_PHASE))
    gateway = ModbusGateway(bus)
    config = ModbusConfig(rtu_enabled=True, rtu_serial_port=str(ours), rtu_unit_id=5)
    gateway.apply(config, [MAIN, HVAC], IDENTITY)
    try:
        yield gateway, theirs
    finally:
        gateway.stop()


@pytest.fixture
def broker(tmp_path):
    """A plain Mosquitto broker of the test's own on an ephemeral port."""
    from emsbox.testing.mosquitto import Broker

    b = Broker(tmp_path / "broker").start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def ca(tmp_path):
    """A certificate authority of the test's own."""
    from emsbox.testing.certificates import CertificateAuthority

    return CertificateAuthority(tmp_path / "ca")


@pytest.fixture
def harness(tmp_path):
    """A bus, a log store and an MQTT gateway (not yet enabled)."""
    from mqtt_support import Harness

    h = Harness(tmp_path / "emsbox")
    try:
        yield h
    finally:
        h.close()
