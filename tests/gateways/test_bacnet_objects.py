"""The BACnet object table and settings: numbering, names, units, COV increments."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from emsbox.gateways.bacnet.config import BacnetConfig
from emsbox.gateways.bacnet.identifiers import EngineeringUnits, ObjectType
from emsbox.gateways.bacnet.objects import load_objects, object_table
from emsbox.gateways.bacnet.server import Identity, derive_instance, device_identity
from emsbox.variables import ALL, ENERGY, HOURS, INSTANTANEOUS


def test_every_load_has_one_object_per_variable_numbered_by_place_and_index():
    table = object_table(["main", "hvac"])
    assert len(table) == 2 * len(ALL) + 2
    for number, load in enumerate(["main", "hvac"], start=1):
        objects = [o for o in table if o.load == load]
        assert [o.instance for o in objects] == [number * 1000 + i for i in range(len(ALL))]
        assert [o.name for o in objects] == [f"{load}.{v.name}" for v in ALL]
    kinds = [o.type for o in load_objects(1, "main")]
    assert kinds.count(ObjectType.ANALOG_INPUT) == len(INSTANTANEOUS) == 39
    assert kinds.count(ObjectType.ANALOG_VALUE) == len(ENERGY) + len(HOURS) == 41
    assert kinds[-2:] == [ObjectType.MULTI_STATE_VALUE, ObjectType.BINARY_VALUE]
    assert [o.key for o in table[-2:]] == [(3, 0), (4, 0)]
    assert len({o.name for o in table}) == len(table)
    assert len({o.key for o in table}) == len(table)


def test_units_and_cov_increments_follow_the_vocabulary():
    by_name = {o.variable: o for o in load_objects(1, "main")}
    assert by_name["v_l1"].units == EngineeringUnits.VOLTS
    assert by_name["pf_sys"].units == EngineeringUnits.POWER_FACTOR
    assert by_name["kvarh_imp"].units == EngineeringUnits.KILOVOLT_AMPERE_HOURS_REACTIVE
    assert by_name["hours_on"].units == EngineeringUnits.HOURS
    assert by_name["thd_i_l1"].units == EngineeringUnits.PERCENT
    assert by_name["p_sys"].cov_increment == 100.0
    assert by_name["freq"].cov_increment == 0.05
    assert by_name["tariff"].cov_increment is None and by_name["tariff"].units is None
    custom = {o.variable: o for o in load_objects(1, "main", {"W": 10.0, "p_sys": 1.0, "PF": 0.1})}
    assert custom["p_l1"].cov_increment == 10.0
    assert custom["p_sys"].cov_increment == 1.0
    assert custom["pf_l1"].cov_increment == 0.1


def test_settings_are_checked():
    assert BacnetConfig().enabled is False and BacnetConfig().port == 47808
    for bad in (
        {"cov_increments": [{"applies_to": "furlongs", "increment": 1.0}]},
        {"cov_increments": [{"applies_to": "V", "increment": 0.0}]},
        {"cov_increments": [{"applies_to": "V", "increment": 1.0}] * 2},
        {"device_instance": 4194303},
        {"bind_address": "::1"},
        {"broadcast_address": "everyone"},
        {"bbmd_address": "10.0.0.1:99999"},
        {"port": 70000},
        {"unknown": 1},
    ):
        with pytest.raises(ValidationError):
            BacnetConfig.model_validate(bad)
    assert BacnetConfig(bbmd_address="bbmd.local:47809").bbmd_address == "bbmd.local:47809"
    assert BacnetConfig(dcc_password="x").model_dump()["dcc_password"].get_secret_value() == "x"
    for field in BacnetConfig.model_fields.values():
        assert field.description


def test_the_device_identity_is_derived_from_the_serial():
    identity = Identity("1.2.3", "0123456789ab")
    derived = device_identity(BacnetConfig(), identity)
    assert derived.instance == derive_instance("0123456789ab") <= 4194302
    assert derived.instance == device_identity(BacnetConfig(), identity).instance
    assert derived.name == "emsbox-0123456789ab"
    chosen = device_identity(BacnetConfig(device_instance=7, device_name="meter"), identity)
    assert (chosen.instance, chosen.name) == (7, "meter")
