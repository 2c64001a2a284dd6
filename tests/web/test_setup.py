"""The first-start setup API: open while no admin exists, checks by field, applies, closes."""

import socket
import time

import pytest
from fastapi.testclient import TestClient

from emsbox.app import Service
from emsbox.config import validate
from emsbox.web.accounts import Role
from emsbox.web.api import create_app
from emsbox.web.api.deps import SETUP_FIRST

PASSWORD = "correct horse battery"
ANSWERS = {
    "admin": {"name": "chief", "password": PASSWORD},
    "site": {"name": "Depot", "timezone": "Europe/Rome", "language": "it"},
    "meter": {
        "main": {"wiring": "3P4W", "nominal_voltage_v": 230.0},
        "loads": [{"name": "chiller", "module": "5A", "ct_primary_a": 250.0}],
    },
    "store": {"logging_interval_s": 900},
}


@pytest.fixture
def fresh(tmp_path):
    service = Service(validate({}), tmp_path)
    service.start()
    try:
        with TestClient(create_app(service), base_url="https://testserver") as client:
            yield service, client
    finally:
        service.stop()


def test_until_an_admin_exists_only_the_setup_and_health_are_served(fresh):
    service, client = fresh
    state = client.get("/api/v1/setup").json()
    assert state["needed"] is True and state["site_name"] == "emsbox"
    assert "Europe/Rome" in {c["value"] for c in state["choices"]["timezone"]}
    assert {c["value"] for c in state["choices"]["wiring"]} >= {"1P2W", "3P4W", "3P4W-WL"}
    assert state["defaults"]["meter"]["main"]["wiring"] == "3P4W"
    # Even a token made on the command line opens nothing before the setup is done.
    _, secret = service.accounts.create_token("early", Role.ADMIN, None)
    r = client.get("/api/v1/loads", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 403 and r.json()["detail"] == SETUP_FIRST
    assert client.get("/api/v1/health").status_code == 200


def test_check_reports_each_problem_by_its_field(fresh):
    _, client = fresh
    r = client.post(
        "/api/v1/setup/check",
        json={
            "admin": {"name": "chief", "password": "iloveyou1"},
            "site": {"timezone": "Mars/Olympus", "colour": "red"},
        },
    )
    assert r.status_code == 200
    errors = r.json()["errors"]
    assert "commonly used" in errors["admin.password"]
    assert errors["site.colour"] == "not a setting of the setup"
    r = client.post(
        "/api/v1/setup/check",
        json={
            "site": {"timezone": "Mars/Olympus"},
            "meter": {"loads": [{"name": "a", "ct_primary_a": 0}, {"name": "Bad Name"}]},
        },
    )
    errors = r.json()["errors"]
    assert "unknown time zone" in errors["site.timezone"]
    assert "meter.loads[0].ct_primary_a" in errors and "meter.loads[1].name" in errors
    ok = client.post("/api/v1/setup/check", json=ANSWERS).json()
    assert ok == {"errors": {}}


def test_a_refused_setup_changes_nothing(fresh):
    service, client = fresh
    assert not service.config_path.exists()  # only `emsbox run` writes the defaults
    bad = {**ANSWERS, "admin": {"name": "chief", "password": "short"}}
    r = client.post("/api/v1/setup", json=bad)
    assert r.status_code == 422 and "admin.password" in r.json()["errors"]
    assert not service.accounts.has_users()
    assert not service.config_path.exists()
    r = client.post("/api/v1/setup", json={"site": {"name": "x"}})
    assert r.status_code == 422 and "admin.name" in r.json()["errors"]
    # A viewer made on the command line does not close the setup, nor lend its name.
    service.accounts.add_user("chief", "a viewer's own password", Role.VIEWER)
    r = client.post("/api/v1/setup", json=ANSWERS)
    assert r.status_code == 422 and "exists already" in r.json()["errors"]["admin.name"]
    assert not service.accounts.has_admin()


def test_the_setup_creates_the_admin_applies_the_meter_and_closes(fresh):
    service, client = fresh
    r = client.post("/api/v1/setup", json=ANSWERS)
    assert r.status_code == 201 and r.json() == {"name": "chief", "role": "admin"}
    assert client.cookies.get("emsbox_session")  # logged in
    assert client.get("/api/v1/me").json()["name"] == "chief"
    saved = service.config_path.read_text()
    assert 'timezone = "Europe/Rome"' in saved and 'name = "chiller"' in saved
    assert service.config.site.name == "Depot"
    # The new load is measured without a restart.
    deadline = time.monotonic() + 30
    while client.get("/api/v1/loads/chiller/now").status_code != 200:
        assert time.monotonic() < deadline, "the new load never gave a reading"
        time.sleep(0.2)
    loads = {x["name"]: x for x in client.get("/api/v1/loads").json()}
    assert set(loads) == {"main", "chiller"}
    # Closed for good.
    assert client.get("/api/v1/setup").json()["needed"] is False
    assert client.post("/api/v1/setup", json=ANSWERS).status_code == 409
    assert client.post("/api/v1/setup/check", json=ANSWERS).status_code == 409
    # The admin's preferences start empty and keep what is set.
    assert client.get("/api/v1/me/preferences").json() == {}
    r = client.put("/api/v1/me/preferences", json={"language": "it"})
    assert r.json() == {"language": "it"}
    assert client.put("/api/v1/me/preferences", json={"language": "xx"}).status_code == 422
    assert client.get("/api/v1/me/preferences").json() == {"language": "it"}


def test_the_setup_turns_the_modbus_server_on_or_says_why_it_cannot(fresh):
    service, client = fresh
    state = client.get("/api/v1/setup").json()
    assert state["defaults"]["modbus"] == {"tcp_enabled": False, "tcp_port": 502}
    checked = client.post("/api/v1/setup/check", json={"modbus": {"bind_address": "::"}})
    assert checked.json()["errors"] == {"modbus.bind_address": "not a setting of the setup"}
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        busy = {**ANSWERS, "modbus": {"tcp_enabled": True, "tcp_port": taken.getsockname()[1]}}
        r = client.post("/api/v1/setup", json=busy)
    assert r.status_code == 422
    assert "cannot listen on 0.0.0.0" in r.json()["errors"]["modbus.tcp_port"]
    assert not service.accounts.has_admin() and service.modbus.address is None
    r = client.post(
        "/api/v1/setup", json={**ANSWERS, "modbus": {"tcp_enabled": True, "tcp_port": 0}}
    )
    assert r.status_code == 201, r.text
    assert service.modbus.address is not None
    with socket.create_connection(("127.0.0.1", service.modbus.address[1]), timeout=5) as sock:
        sock.sendall(b"\x00\x01\x00\x00\x00\x06\x01\x03\x9c\x40\x00\x02")  # 2 registers at 40000
        assert sock.recv(64) == b"\x00\x01\x00\x00\x00\x07\x01\x03\x04SunS"


def test_the_setup_turns_the_bacnet_device_on_with_its_instance(fresh):
    service, client = fresh
    state = client.get("/api/v1/setup").json()
    assert state["defaults"]["bacnet"] == {"enabled": False, "port": 47808, "device_instance": None}
    r = client.post(
        "/api/v1/setup/check",
        json={"bacnet": {"enabled": True, "device_instance": 4194303, "device_name": "x"}},
    )
    errors = r.json()["errors"]
    assert errors == {"bacnet.device_name": "not a setting of the setup"}
    r = client.post(
        "/api/v1/setup/check", json={"bacnet": {"enabled": True, "device_instance": 4194303}}
    )
    assert set(r.json()["errors"]) == {"bacnet.device_instance"}
    assert "4194302" in r.json()["errors"]["bacnet.device_instance"]
    r = client.post("/api/v1/setup/check", json={"bacnet": {"port": 65536}})
    assert set(r.json()["errors"]) == {"bacnet.port"}
    # The final request is checked as well: nothing is saved.
    r = client.post("/api/v1/setup", json={**ANSWERS, "bacnet": {"device_instance": -1}})
    assert r.status_code == 422 and set(r.json()["errors"]) == {"bacnet.device_instance"}
    assert not service.accounts.has_admin() and service.bacnet.address is None

    answers = {"enabled": True, "port": 0, "device_instance": 1234}
    r = client.post("/api/v1/setup", json={**ANSWERS, "bacnet": answers})
    assert r.status_code == 201, r.text
    saved = service.saved_config.bacnet
    assert (saved.enabled, saved.port, saved.device_instance) == (True, 0, 1234)
    assert service.bacnet.address is not None and service.bacnet.device_instance == 1234
    # A Who-Is (BVLC original-unicast, NPDU, unconfirmed Who-Is) gets the device's I-Am.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"\x81\x0a\x00\x08\x01\x00\x10\x08", ("127.0.0.1", service.bacnet.address[1]))
        answer = sock.recv(1500)
    assert answer[answer.index(b"\x10\x00\xc4") + 3 :][:4] == ((8 << 22) | 1234).to_bytes(4, "big")
    gateway = {g["name"]: g for g in client.get("/api/v1/system").json()["gateways"]}["BACnet/IP"]
    assert gateway["enabled"] and gateway["healthy"], gateway


def test_an_instance_left_empty_is_derived_from_the_serial_number(fresh):
    service, client = fresh
    bacnet = {"enabled": True, "port": 0, "device_instance": None}
    r = client.post("/api/v1/setup", json={**ANSWERS, "bacnet": bacnet})
    assert r.status_code == 201, r.text
    assert service.saved_config.bacnet.device_instance is None
    assert service.bacnet.device_instance is not None
