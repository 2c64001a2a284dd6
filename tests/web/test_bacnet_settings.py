"""The BACnet/IP device turned on through the API while the service runs, read by a real
bacpypes3 client in its own process: it finds the device, reads the simulated loads' values as
the REST API gives them, and, once an installer allows it, switches the digital output; a busy
port is refused at its field and nothing changes."""

from __future__ import annotations

import math
import re
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateways"))
from bacnet_support import client_process

from emsbox.variables import ALL

INDEX = {v.name: i for i, v in enumerate(ALL)}


def _config(api):
    return api.client.get("/api/v1/config", headers=api.headers("admin")).json()


def _put(api, config):
    return api.client.put("/api/v1/config", json=config, headers=api.headers("admin"))


def _bacnet(api) -> dict:
    system = api.client.get("/api/v1/system", headers=api.headers("viewer")).json()
    (gateway,) = [g for g in system["gateways"] if g["name"] == "BACnet/IP"]
    return gateway


def _now(api, load: str) -> dict:
    r = api.client.get(f"/api/v1/loads/{load}/now", headers=api.headers("viewer"))
    return r.json()["values"]


def _io(api) -> dict:
    return api.client.get("/api/v1/io", headers=api.headers("viewer")).json()


def _until(check, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)


def test_bacnet_is_off_by_default_then_serves_the_loads_and_switches_the_output(api):
    assert _bacnet(api) == {"name": "BACnet/IP", "enabled": False, "healthy": True, "detail": "off"}
    config = _config(api)
    config["bacnet"] |= {"enabled": True, "bind_address": "127.0.0.1", "port": 0}
    r = _put(api, config)
    assert r.status_code == 200, r.text
    assert r.json()["restart_required"] is False
    gateway = _bacnet(api)
    assert gateway["enabled"] and gateway["healthy"], gateway
    port, instance = map(int, re.search(r":(\d+), device (\d+)", gateway["detail"]).groups())

    with client_process(("127.0.0.1", port)) as client:
        (found,) = client.result("who_is")
        assert found["device"] == f"device,{instance}"
        objects = client.result("read", object=f"device,{instance}", property="objectList")
        assert len(objects) == 1 + 2 * len(ALL) + 2  # the device, main and hvac, DI and DO
        # Load 2 is hvac: its voltage and tariff as the REST API gives them (the voltage
        # moves a little between the two reads).
        v_l1 = client.result(
            "read", object=f"analog-input,{2000 + INDEX['v_l1']}", property="presentValue"
        )
        assert math.isclose(v_l1, _now(api, "hvac")["v_l1"], rel_tol=0.02)
        name = client.result(
            "read", object=f"analog-input,{2000 + INDEX['v_l1']}", property="objectName"
        )
        assert name == "hvac.v_l1"
        tariff = client.result(
            "read", object=f"multi-state-value,{2000 + INDEX['tariff']}", property="presentValue"
        )
        assert tariff == _now(api, "hvac")["tariff"]

        # The output is read-only over BACnet until an installer allows commanding it.
        bo = "binary-output,0"
        refused = client.call("write", object=bo, property="presentValue", value=1, priority=8)
        assert "write-access-denied" in str(refused), refused
        config["io"]["output_function"] = "remote"
        config["bacnet"]["output_commandable"] = True
        assert _put(api, config).status_code == 200
        assert client.result("write", object=bo, property="presentValue", value=1, priority=8)
        _until(lambda: _io(api)["output_on"])
        assert client.result("read", object=bo, property="presentValue") == "active"
        assert client.result("write", object=bo, property="presentValue", value=None, priority=8)
        _until(lambda: not _io(api)["output_on"])

    # A port another program holds is refused at its field; the device keeps serving.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("127.0.0.1", 0))
        config["bacnet"]["port"] = other.getsockname()[1]
        r = _put(api, config)
        assert r.status_code == 422, r.text
        assert set(r.json()["errors"]) == {"bacnet.port"}, r.json()
    assert f":{port}," in _bacnet(api)["detail"]
    config["bacnet"] |= {"enabled": False, "port": 47808, "output_commandable": False}
    config["io"]["output_function"] = "off"
    assert _put(api, config).status_code == 200
    assert _bacnet(api)["detail"] == "off"
