"""Home Assistant's documented schema of MQTT discovery messages, as far as emsbox uses it.

From home-assistant.io "MQTT" (discovery: topic ``<prefix>/<component>/[<node_id>/]<object_id>
/config``, node and object ids of ``[a-zA-Z0-9_-]``, a ``device`` needs ``identifiers`` or
``connections``, entities in the device registry need ``unique_id``), "MQTT Sensor" and "MQTT
Binary sensor" (their configuration variables) and developers.home-assistant.io "Sensor entity"
(device classes with their allowed units; state classes; energy for the Energy dashboard:
``state_class`` total or total_increasing with Wh, kWh, MWh, …).
"""

from __future__ import annotations

import re
from typing import Any

TOPIC = re.compile(
    r"^(?P<prefix>[^/#+]+)/(?P<component>sensor|binary_sensor)/"
    r"(?:(?P<node>[a-zA-Z0-9_-]+)/)?(?P<object>[a-zA-Z0-9_-]+)/config$"
)
COMMON_KEYS = {
    "availability_topic",
    "availability",
    "availability_mode",
    "payload_available",
    "payload_not_available",
    "device",
    "device_class",
    "enabled_by_default",
    "entity_category",
    "expire_after",
    "force_update",
    "icon",
    "json_attributes_topic",
    "json_attributes_template",
    "name",
    "qos",
    "state_topic",
    "unique_id",
    "value_template",
}
SENSOR_KEYS = COMMON_KEYS | {
    "state_class",
    "unit_of_measurement",
    "suggested_display_precision",
    "last_reset_value_template",
    "options",
}
BINARY_SENSOR_KEYS = COMMON_KEYS | {"payload_on", "payload_off", "off_delay"}
DEVICE_KEYS = {
    "identifiers",
    "connections",
    "name",
    "manufacturer",
    "model",
    "model_id",
    "sw_version",
    "hw_version",
    "serial_number",
    "suggested_area",
    "via_device",
    "configuration_url",
}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
# Sensor device classes emsbox uses → the units Home Assistant accepts for them.
SENSOR_UNITS: dict[str, set[str | None]] = {
    "voltage": {"V", "mV", "µV", "kV", "MV"},
    "current": {"A", "mA"},
    "power": {"W", "kW", "MW", "GW", "TW", "mW"},
    "reactive_power": {"var", "kvar", "mvar"},
    "apparent_power": {"VA", "kVA", "mVA"},
    "power_factor": {"%", None},
    "frequency": {"Hz", "kHz", "MHz", "GHz"},
    "energy": {"Wh", "kWh", "MWh", "GWh", "TWh", "mWh", "MJ", "GJ", "cal", "kcal", "Mcal", "Gcal"},
    "reactive_energy": {"varh", "kvarh"},
    "duration": {"d", "h", "min", "s", "ms", "µs"},
}
# Device classes whose values only accumulate: they need a total state class.
TOTALS = {"energy", "reactive_energy"}
BINARY_SENSOR_CLASSES = {"running", "power", "problem", "connectivity", "plug"}


def problems(topic: str, config: dict[str, Any]) -> list[str]:
    """Everything in one discovery message that Home Assistant would refuse or warn about."""
    found = []
    match = TOPIC.match(topic)
    if match is None:
        return [f"{topic}: not a discovery config topic"]
    component = match["component"]
    allowed = SENSOR_KEYS if component == "sensor" else BINARY_SENSOR_KEYS
    found += [f"unknown key {k}" for k in set(config) - allowed]
    if not isinstance(config.get("state_topic"), str) or not config["state_topic"]:
        found.append("state_topic missing")
    if not isinstance(config.get("unique_id"), str):
        found.append("unique_id missing (needed with a device)")
    device = config.get("device")
    if not isinstance(device, dict) or not (device.get("identifiers") or device.get("connections")):
        found.append("device needs identifiers or connections")
    else:
        found += [f"unknown device key {k}" for k in set(device) - DEVICE_KEYS]
        if not isinstance(device.get("identifiers", []), list):
            found.append("device identifiers must be a list")
    template = config.get("value_template", "")
    if "value_json.values" in template:
        found.append("value_json.values is the dict's method, not a key")
    device_class = config.get("device_class")
    if component == "binary_sensor":
        if device_class is not None and device_class not in BINARY_SENSOR_CLASSES:
            found.append(f"binary sensor device_class {device_class}")
        return found
    unit = config.get("unit_of_measurement")
    state_class = config.get("state_class")
    if state_class is not None and state_class not in STATE_CLASSES:
        found.append(f"state_class {state_class}")
    if device_class is not None:
        if device_class not in SENSOR_UNITS:
            found.append(f"device_class {device_class} not expected")
        elif unit not in SENSOR_UNITS[device_class]:
            found.append(f"unit {unit!r} not valid for {device_class}")
        if device_class in TOTALS and state_class not in ("total", "total_increasing"):
            found.append(f"{device_class} needs a total state class")
    if state_class is not None and unit is None and device_class is None:
        found.append("a numeric sensor without unit or device class")
    return found
