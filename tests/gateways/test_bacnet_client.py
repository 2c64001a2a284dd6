"""The BACnet/IP device against a real client: bacpypes3 in its own process on 127.0.0.1."""

from __future__ import annotations

import math
import struct

import pytest
from bacnet_support import IDENTITY, LOADS, client_process, reading, running_gateway

from emsbox.gateways.bacnet.server import derive_instance
from emsbox.variables import ALL, Kind


@pytest.fixture(scope="module")
def device():
    with running_gateway() as (gateway, bus, io, health):
        assert gateway.address is not None
        with client_process(gateway.address) as client:
            yield gateway, bus, io, health, client


def as_real(x: float) -> float:
    """What a REAL holds of ``x`` (7 significant digits)."""
    return float(struct.unpack(">f", struct.pack(">f", x))[0])


def test_who_is_finds_the_device_with_its_instance(device):
    gateway, _, _, _, client = device
    instance = derive_instance(IDENTITY.serial)
    assert gateway.device_instance == instance
    found = client.result("who_is")
    assert found == [
        {
            "device": f"device,{instance}",
            "max_apdu": 1476,
            "segmentation": "segmented-transmit",
            "vendor": 0,
        }
    ]
    assert client.result("who_is", low=instance, high=instance) != []
    assert client.result("who_is", low=instance + 1, high=instance + 5, timeout=1) == []


def test_object_list_and_every_present_value_match_the_bus(device):
    gateway, bus, _, _, client = device
    instance = gateway.device_instance
    objects = client.result("read", object=f"device,{instance}", property="objectList")
    assert objects[0] == f"device,{instance}"
    assert len(objects) == 1 + len(LOADS) * len(ALL) + 2
    assert client.result(
        "read", object=f"device,{instance}", property="objectList", index=0
    ) == len(objects)
    values = dict(client.result("read_many", objects=objects[1:], property="presentValue"))
    names = dict(client.result("read_many", objects=objects[1:], property="objectName"))
    for number, load in enumerate(LOADS, start=1):
        latest = bus.latest(load)
        assert latest is not None
        for index, variable in enumerate(ALL):
            kind = {
                Kind.INSTANTANEOUS: "analog-input",
                Kind.ENERGY: "analog-value",
                Kind.HOURS: "analog-value",
            }.get(variable.kind)
            if variable.name == "tariff":
                kind = "multi-state-value"
            elif variable.name == "partial_running":
                kind = "binary-value"
            key = f"{kind},{number * 1000 + index}"
            assert names[key] == f"{load}.{variable.name}"
            got = values[key]
            if variable.name == "tariff":
                assert got == latest.tariff
            elif variable.name == "partial_running":
                assert got == ("active" if latest.partial_running else "inactive")
            else:
                expected = latest.as_dict().get(variable.name, 0.0)
                assert math.isclose(got, as_real(float(expected)), rel_tol=1e-7), key
    assert values["binary-input,0"] == "inactive"
    assert values["binary-output,0"] == "inactive"


def test_read_property_multiple_all_and_required(device):
    gateway, _, _, _, client = device
    me = f"device,{gateway.device_instance}"
    rows = client.result("rpm", args=[me, ["all"]])["rows"]
    props = {r[1]: r[3] for r in rows}
    for required in (
        "object-identifier",
        "object-name",
        "object-type",
        "system-status",
        "vendor-name",
        "vendor-identifier",
        "model-name",
        "firmware-revision",
        "application-software-version",
        "protocol-version",
        "protocol-revision",
        "protocol-services-supported",
        "protocol-object-types-supported",
        "object-list",
        "max-apdu-length-accepted",
        "segmentation-supported",
        "apdu-timeout",
        "number-of-apdu-retries",
        "device-address-binding",
        "database-revision",
        "property-list",
    ):
        assert required in props, required
    assert props["firmware-revision"] == IDENTITY.version
    assert props["protocol-revision"] == 14
    services = props["protocol-services-supported"]
    executed = {i for i, bit in enumerate(services) if bit}
    # subscribeCOV, RP, RPM, WP, WPM, DCC, reinitialize, who-Has, who-Is (clause 21)
    assert executed == {5, 12, 14, 15, 16, 17, 20, 33, 34}
    required = {r[1] for r in client.result("rpm", args=[me, ["required"]])["rows"]}
    assert "location" not in required and "object-list" in required
    optional = {r[1] for r in client.result("rpm", args=[me, ["optional"]])["rows"]}
    assert optional == {"location", "description"}

    ai = client.result("rpm", args=["analog-input,1016", ["all"]])["rows"]
    ai_props = {r[1]: r[3] for r in ai}
    assert ai_props["object-name"] == "main.p_sys"
    assert ai_props["units"] == "watts"
    assert ai_props["cov-increment"] == 100.0
    assert ai_props["reliability"] == "no-fault-detected"
    assert ai_props["status-flags"] == [0, 0, 0, 0]
    msv = {
        r[1]: r[3] for r in client.result("rpm", args=["multi-state-value,1080", ["all"]])["rows"]
    }
    assert msv["state-text"] == ["tariff 1", "tariff 2"]
    assert msv["present-value"] == 2


def test_rpm_of_present_value_and_status_of_a_whole_load_is_segmented(device):
    _, _, _, _, client = device
    args: list[object] = []
    for index, variable in enumerate(ALL):
        kind = "analog-input" if variable.kind is Kind.INSTANTANEOUS else "analog-value"
        if variable.kind is Kind.STATE:
            continue
        args += [f"{kind},{1000 + index}", ["presentValue", "statusFlags"]]
    rows = client.result("rpm", args=args)["rows"]
    assert len(rows) == 2 * 80
    everything = client.result("rpm", args=[a if isinstance(a, str) else ["all"] for a in args])
    assert len(everything["rows"]) == 80 * 12  # about 30 kB: segments of the client's size


def test_unknown_object_property_and_read_only_writes(device):
    _, _, _, _, client = device
    assert client.call("read", object="analog-input,999", property="presentValue")["error"] == {
        "kind": "error",
        "class": "object",
        "code": "unknown-object",
    }
    assert (
        client.call("read", object="analog-input,1000", property="priorityArray")["error"]["code"]
        == "unknown-property"
    )
    assert (
        client.call("read", object="analog-input,1000", property="statusFlags", index=1)["error"][
            "code"
        ]
        == "property-is-not-an-array"
    )
    for obj, value in (("analog-input,1000", 1.0), ("analog-value,1039", 5.0)):
        answer = client.call("write", object=obj, property="presentValue", value=value)
        assert answer["error"] == {
            "kind": "error",
            "class": "property",
            "code": "write-access-denied",
        }
    answer = client.call("write", object="binary-output,0", property="presentValue", value="active")
    assert answer["error"]["code"] == "write-access-denied"  # not made commandable
    assert (
        client.call("write", object="analog-input,1000", property="objectName", value="x")["error"][
            "code"
        ]
        == "write-access-denied"
    )


def test_refused_and_unsupported_services(device):
    _, _, _, _, client = device
    assert client.call("dcc")["error"] == {
        "kind": "error",
        "class": "services",
        "code": "service-request-denied",
    }
    assert client.call("dcc", password="guess")["error"]["code"] == "service-request-denied"
    assert client.call("reinit")["error"]["code"] == "service-request-denied"
    assert client.call("unsupported")["error"] == {
        "kind": "reject",
        "reason": "unrecognized-service",
    }


def test_who_has_by_name_and_by_identifier(device):
    gateway, _, _, _, client = device
    me = f"device,{gateway.device_instance}"
    assert client.result("who_has", name="hvac.kwh_imp") == [
        {"device": me, "object": "analog-value,2039", "name": "hvac.kwh_imp"}
    ]
    assert client.result("who_has", object="binary-output,0") == [
        {"device": me, "object": "binary-output,0", "name": "digital_output"}
    ]


def test_cov_notifications_follow_the_increment_and_the_health(device):
    _, bus, _, health, client = device
    for confirmed in (False, True):
        assert client.result("cov_start", object="analog-input,1000", confirmed=confirmed) == (
            "subscribed"
        )
        initial = [client.result("cov_get"), client.result("cov_get")]
        assert initial[0][0] == "present-value"
        base = initial[0][1]
        bus.publish(reading("main", v_l1=base + 0.5))  # below the 1 V increment
        assert client.result("cov_get", timeout=1.0) is None
        bus.publish(reading("main", v_l1=base + 1.5))
        changed = [client.result("cov_get"), client.result("cov_get")]
        assert changed[0] == ["present-value", as_real(base + 1.5)]
        assert changed[1] == ["status-flags", [0, 0, 0, 0]]

        health.unhealthy.add("main")
        fault = [client.result("cov_get"), client.result("cov_get")]
        assert fault[1] == ["status-flags", [0, 1, 0, 0]]
        assert client.result("read", object="analog-input,1000", property="reliability") == (
            "communication-failure"
        )
        health.unhealthy.clear()
        back = [client.result("cov_get"), client.result("cov_get")]
        assert back[1] == ["status-flags", [0, 0, 0, 0]]
        bus.publish(reading("main"))
        client.result("cov_stop")
        while client.result("cov_get", timeout=0.3) is not None:
            pass


def test_missing_phase_reads_zero_with_no_sensor(device):
    _, _, _, _, client = device
    # hvac is single phase: no L2 voltage
    v_l2 = next(i for i, v in enumerate(ALL) if v.name == "v_l2")
    obj = f"analog-input,{2000 + v_l2}"
    assert client.result("read", object=obj, property="presentValue") == 0.0
    assert client.result("read", object=obj, property="reliability") == "no-sensor"
