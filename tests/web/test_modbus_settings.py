"""The Modbus gateway set up through the API while the service runs, read by a SunSpec
client: its values are the REST API's, within the resolution of the map."""

import csv
import io
import json
import logging
import re
import socket
import struct
import time

import pytest
from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

from emsbox.app import Service
from emsbox.config import validate


def _config(api, role="admin"):
    return api.client.get("/api/v1/config", headers=api.headers(role)).json()


def _put(api, config, role="admin"):
    return api.client.put("/api/v1/config", json=config, headers=api.headers(role))


def _modbus_port(api) -> int:
    system = api.client.get("/api/v1/system", headers=api.headers("viewer")).json()
    (gateway,) = [g for g in system["gateways"] if g["name"] == "Modbus TCP"]
    assert gateway["enabled"] and gateway["healthy"], gateway
    return int(re.search(r":(\d+),", gateway["detail"]).group(1))


def _scan(port: int, unit: int):
    device = SunSpecModbusClientDeviceTCP(slave_id=unit, ipaddr="127.0.0.1", ipport=port)
    try:
        device.scan()
        return {k: v[0] for k, v in device.models.items()}
    finally:
        device.close()


def test_modbus_is_off_by_default_and_an_installer_turns_it_on(api):
    config = _config(api)
    assert config["modbus"]["tcp_enabled"] is False
    system = api.client.get("/api/v1/system", headers=api.headers("viewer")).json()
    assert system["gateways"] == [
        {"name": "Modbus TCP", "enabled": False, "healthy": True, "detail": "off"},
        {"name": "Modbus RTU", "enabled": False, "healthy": True, "detail": "off"},
        {"name": "MQTT", "enabled": False, "healthy": True, "detail": "off"},
        {"name": "BACnet/IP", "enabled": False, "healthy": True, "detail": "off"},
    ]
    config["modbus"] |= {"tcp_enabled": True, "bind_address": "127.0.0.1", "tcp_port": 0}
    assert _put(api, config, "viewer").status_code == 403
    r = _put(api, config, "installer")
    assert r.status_code == 200, r.text
    _modbus_port(api)
    config["modbus"]["tcp_enabled"] = False
    assert _put(api, config, "installer").status_code == 200


def test_modbus_turned_on_serves_the_values_of_the_rest_api(api):
    config = _config(api)
    config["modbus"] |= {"tcp_enabled": True, "bind_address": "127.0.0.1", "tcp_port": 0}
    r = _put(api, config)
    assert r.status_code == 200, r.text
    assert r.json()["restart_required"] is False  # applied at once
    port = _modbus_port(api)
    parts = api.client.get("/api/v1/system", headers=api.headers("viewer")).json()["parts"]
    assert any(p["name"] == "Modbus TCP" and p["healthy"] for p in parts)
    for unit, load, model in ((1, "main", 213), (2, "hvac", 213)):
        # The values change every second: compare a scan with the REST reading of that second.
        for _ in range(20):
            before = api.client.get(f"/api/v1/loads/{load}/now", headers=api.headers("viewer"))
            models = _scan(port, unit)
            after = api.client.get(f"/api/v1/loads/{load}/now", headers=api.headers("viewer"))
            if before.json()["timestamp_s"] == after.json()["timestamp_s"]:
                break
        else:
            pytest.fail("no scan within one reading in 20 attempts")
        values = before.json()["values"]
        meter = models[model]
        assert models[1].Opt.value == load
        # float32 carries 7 significant digits.
        assert meter.W.value == pytest.approx(values["p_sys"], rel=1e-6)
        assert meter.PhVphA.value == pytest.approx(values["v_l1"], rel=1e-6)
        assert meter.PPVphAB.value == pytest.approx(values["v_l12"], rel=1e-6)
        assert meter.PF.value == pytest.approx(values["pf_sys"], rel=1e-6)
        assert meter.TotWhImp.value == pytest.approx(1000 * values["kwh_imp"], rel=1e-6)


def test_a_port_that_cannot_be_listened_on_is_refused_by_its_field(api):
    config = _config(api)
    config["modbus"] |= {"tcp_enabled": True, "bind_address": "127.0.0.1", "tcp_port": 0}
    assert _put(api, config).status_code == 200
    port = _modbus_port(api)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = json.loads(json.dumps(config))
        busy["modbus"]["tcp_port"] = taken.getsockname()[1]
        r = _put(api, busy)
    assert r.status_code == 422
    assert "cannot listen on 127.0.0.1" in r.json()["errors"]["modbus.tcp_port"]
    # Nothing was saved and the server runs on where it was.
    assert _config(api)["modbus"]["tcp_port"] == 0
    assert _modbus_port(api) == port
    assert _scan(port, 1)[1].Mn.value == "emsbox"


def test_modbus_turned_off_closes_the_port(api):
    config = _config(api)
    config["modbus"] |= {"tcp_enabled": True, "bind_address": "127.0.0.1", "tcp_port": 0}
    assert _put(api, config).status_code == 200
    port = _modbus_port(api)
    config["modbus"]["tcp_enabled"] = False
    assert _put(api, config).status_code == 200
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_every_register_map_downloads_as_csv(api):
    maps = api.client.get("/api/v1/modbus/maps", headers=api.headers("viewer")).json()
    names = [m["name"] for m in maps]
    assert names == ["native", "sunspec-float", "sunspec-int", "commands", "carlo-gavazzi"]
    for m in maps:
        r = api.client.get(m["csv"], headers=api.headers("viewer"))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert len(rows) == m["points"]
        assert all(int(row["register"]) == int(row["address"]) + 1 for row in rows)
    native = api.client.get("/api/v1/modbus/maps/native.csv", headers=api.headers("viewer")).text
    p_sys = next(row for row in csv.DictReader(io.StringIO(native)) if row["name"] == "p_sys")
    assert (p_sys["type"], p_sys["unit"]) == ("float32", "W")
    r = api.client.get("/api/v1/modbus/maps/em24.csv", headers=api.headers("viewer"))
    assert r.status_code == 404 and "known: native" in r.json()["detail"]


def test_a_serial_port_that_cannot_be_opened_is_refused_by_its_field(api, tmp_path):
    config = _config(api)
    config["modbus"] |= {"rtu_enabled": True, "rtu_serial_port": str(tmp_path / "ttyNone")}
    r = _put(api, config)
    assert r.status_code == 422
    assert "cannot open" in r.json()["errors"]["modbus.rtu_serial_port"]
    assert _config(api)["modbus"]["rtu_enabled"] is False


def test_at_start_a_missing_serial_port_stops_only_the_rtu_slave(tmp_path):
    modbus = {"tcp_enabled": True, "bind_address": "127.0.0.1", "tcp_port": 0}
    modbus |= {"rtu_enabled": True, "rtu_serial_port": str(tmp_path / "ttyNone")}
    service = Service(validate({"modbus": modbus}), tmp_path)
    service.start()
    try:
        tcp, rtu, mqtt, bacnet = service.gateways()
        assert (tcp.name, tcp.enabled, tcp.healthy) == ("Modbus TCP", True, True)
        assert (rtu.name, rtu.enabled, rtu.healthy) == ("Modbus RTU", True, False)
        assert "cannot open" in rtu.detail
        assert (mqtt.name, mqtt.enabled) == ("MQTT", False)
        assert (bacnet.name, bacnet.enabled) == ("BACnet/IP", False)
        assert not all(part.healthy for part in service.health())
    finally:
        service.stop()


def _write(port: int, unit: int, address: int, value: int) -> bytes:
    """FC 6 over a fresh connection; the answer's PDU."""
    pdu = struct.pack(">BHH", 6, address, value)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(struct.pack(">HHHB", 1, 0, len(pdu) + 1, unit) + pdu)
        header = sock.recv(7)
        return sock.recv(struct.unpack(">H", header[4:6])[0] - 1)


def _read(port: int, unit: int, address: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(struct.pack(">HHHBBHH", 1, 0, 6, unit, 3, address, 1))
        return struct.unpack(">H", sock.recv(64)[-2:])[0]


def _now(api, load="hvac"):
    return api.client.get(f"/api/v1/loads/{load}/now", headers=api.headers("viewer")).json()


def _until(api, check, load="hvac"):
    deadline = time.monotonic() + 10
    while not check(_now(api, load)["values"]):
        assert time.monotonic() < deadline, _now(api, load)
        time.sleep(0.1)


def test_writes_are_refused_unless_enabled_then_command_the_load_and_are_logged(api, caplog):
    config = _config(api)
    config["modbus"] |= {"tcp_enabled": True, "bind_address": "127.0.0.1", "tcp_port": 0}
    config["modbus"]["writes_enabled"] = False
    assert _put(api, config).status_code == 200
    port = _modbus_port(api)
    assert _write(port, 2, 39000, 2) == b"\x86\x01"  # illegal function: writes are off
    config["modbus"]["writes_enabled"] = True
    assert _put(api, config).status_code == 200
    caplog.set_level(logging.INFO, logger="emsbox.gateways")
    # Unit 2 is hvac: stop its partial counters, and read the state back.
    assert _write(port, 2, 39000, 2) == struct.pack(">BHH", 6, 39000, 2)
    _until(api, lambda v: v["partial_running"] is False)
    assert _now(api, "main")["values"]["partial_running"] is True  # only that load
    deadline = time.monotonic() + 5
    while _read(port, 2, 39000) != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "asks for stop on load hvac" in caplog.text
    # Reset, then start again; select tariff 2.
    assert _write(port, 2, 39000, 3)[0] == 6
    assert _write(port, 2, 39000, 1)[0] == 6
    assert _write(port, 2, 39001, 2)[0] == 6
    _until(api, lambda v: v["partial_running"] is True and v["tariff"] == 2)
    # A value or register that is no command gets its exception, and nothing happens.
    assert _write(port, 2, 39000, 9) == b"\x86\x03"
    assert _write(port, 2, 30042, 1) == b"\x86\x02"
    assert _write(port, 2, 39001, 1)[0] == 6
    config["modbus"]["writes_enabled"] = False
    assert _put(api, config).status_code == 200


def _output_on(api) -> bool:
    return bool(api.client.get("/api/v1/io", headers=api.headers("viewer")).json()["output_on"])


def test_the_output_register_switches_the_digital_output_only_when_it_is_remote(api, caplog):
    config = _config(api)
    config["modbus"] |= {"tcp_enabled": True, "bind_address": "127.0.0.1", "tcp_port": 0}
    config["modbus"]["writes_enabled"] = True
    config["io"]["output_function"] = "off"
    assert _put(api, config).status_code == 200
    port = _modbus_port(api)
    caplog.set_level(logging.INFO)
    # Not remote: refused with exception 04, and the output stays off.
    assert _write(port, 1, 39002, 1) == b"\x86\x04"
    assert not _output_on(api)
    assert "not remote" in caplog.text
    config["io"]["output_function"] = "remote"
    assert _put(api, config).status_code == 200
    # Any unit switches the one output; the register reads it back at once, at every unit.
    assert _write(port, 2, 39002, 1) == struct.pack(">BHH", 6, 39002, 1)
    assert _read(port, 2, 39002) == 1
    assert _read(port, 1, 39002) == 1
    deadline = time.monotonic() + 5
    while not _output_on(api):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "digital output switched on by modbus 127.0.0.1" in caplog.text
    assert _write(port, 1, 39002, 2) == b"\x86\x03"  # no such value
    # Switched off from the API: the register follows with the next reading.
    answer = api.client.put(
        "/api/v1/io/output", json={"on": False}, headers=api.headers("installer")
    )
    assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 5
    while _read(port, 1, 39002) != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    config["modbus"]["writes_enabled"] = False
    config["io"]["output_function"] = "off"
    assert _put(api, config).status_code == 200
