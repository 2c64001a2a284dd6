"""Home Assistant MQTT discovery: one device per load, one entity per variable.

The table below maps each unit of VARIABLES.md to the Home Assistant sensor device class,
state class and display precision documented for it (developers.home-assistant.io, "Sensor
entity", and home-assistant.io "MQTT Sensor"): energy counters are ``device_class: energy``,
``state_class: total_increasing`` in kWh, which is what the Energy dashboard accepts; reactive
energy has the ``reactive_energy`` class (kvarh); apparent energy has no class of its own, so
it carries only its unit. Partial counters restart from zero when reset: ``total_increasing``
takes any decrease as the start of a new cycle, as a reset is.

A config message goes to ``<discovery prefix>/<component>/<node id>/<load>-<variable>/config``,
retained; an empty retained message on the same topic removes the entity. Unique ids are
``<node id>:<load>:<variable>``, devices ``<node id>:<load>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from emsbox import variables
from emsbox.variables import Kind

# unit → (device_class, suggested_display_precision); None: no device class.
_INSTANT: dict[str, tuple[str | None, int]] = {
    "V": ("voltage", 1),
    "A": ("current", 2),
    "W": ("power", 0),
    "var": ("reactive_power", 0),
    "VA": ("apparent_power", 0),
    "": ("power_factor", 3),  # the power factors: the only unitless instantaneous values
    "Hz": ("frequency", 2),
    "%": (None, 1),  # THD
}
_COUNTER: dict[str, tuple[str | None, int]] = {
    "kWh": ("energy", 3),
    "kvarh": ("reactive_energy", 3),
    "kVAh": (None, 3),
    "h": ("duration", 2),
}


@dataclass(frozen=True)
class EntityClass:
    """How Home Assistant should treat one variable."""

    component: str  # "sensor" or "binary_sensor"
    device_class: str | None
    state_class: str | None
    unit: str | None
    precision: int | None


def entity_class(name: str) -> EntityClass:
    """The Home Assistant classes of variable ``name``."""
    var = variables.BY_NAME[name]
    if name == "partial_running":
        return EntityClass("binary_sensor", "running", None, None, None)
    if var.kind is Kind.STATE:
        return EntityClass("sensor", None, None, None, 0)
    if var.kind is Kind.INSTANTANEOUS:
        device_class, precision = _INSTANT[var.unit]
        return EntityClass("sensor", device_class, "measurement", var.unit or None, precision)
    device_class, precision = _COUNTER[var.unit]
    return EntityClass("sensor", device_class, "total_increasing", var.unit, precision)


def node_id(device_id: str) -> str:
    """The device id as a discovery node id (letters, digits, '_' and '-' only)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", device_id)


@dataclass(frozen=True)
class DeviceInfo:
    """What Home Assistant shows of the device."""

    device_id: str
    site: str
    version: str


def config_topic(prefix: str, device_id: str, load: str, name: str) -> str:
    """The discovery topic of one variable of one load."""
    component = entity_class(name).component
    # "-" joins load and variable: load names may hold "_" and "-", variable names only "_",
    # so no two (load, variable) pairs give the same object id.
    return f"{prefix}/{component}/{node_id(device_id)}/{load}-{name}/config"


def config_messages(
    prefix: str,
    info: DeviceInfo,
    *,
    load: str,
    wiring: str,
    names: Iterable[str],
    state_topic: str,
    status_topic: str,
) -> dict[str, str]:
    """Topic → retained config payload for each variable of ``load`` in ``names``."""
    node = node_id(info.device_id)
    device = {
        "identifiers": [f"{node}:{load}"],
        "name": f"{info.site} {load}",
        "manufacturer": "emsbox",
        "model": f"Energy meter ({wiring})",
        "sw_version": info.version,
    }
    out = {}
    for name in names:
        if name not in variables.BY_NAME:
            continue
        cls = entity_class(name)
        body: dict[str, object] = {
            "name": variables.BY_NAME[name].description,
            "unique_id": f"{node}:{load}:{name}",
            "state_topic": state_topic,
            "availability_topic": status_topic,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        }
        if cls.component == "binary_sensor":
            body["value_template"] = f"{{{{ 'ON' if value_json.{name} else 'OFF' }}}}"
        else:
            body["value_template"] = f"{{{{ value_json.{name} }}}}"
        for key, value in (
            ("device_class", cls.device_class),
            ("state_class", cls.state_class),
            ("unit_of_measurement", cls.unit),
            ("suggested_display_precision", cls.precision),
        ):
            if value is not None:
                body[key] = value
        out[config_topic(prefix, info.device_id, load, name)] = json.dumps(
            body, separators=(",", ":")
        )
    return out
