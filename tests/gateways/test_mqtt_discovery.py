"""Home Assistant MQTT discovery against a real broker: the messages validate against Home
Assistant's documented schema, the Energy dashboard gets its counters, and turning discovery
off removes every entity again."""

from __future__ import annotations

import json
import time

from ha_schema import problems
from mqtt_support import DEVICE, INFO, Subscriber, plain

from emsbox.gateways.mqtt.discovery import config_messages
from emsbox.variables import ALL

PREFIX = "homeassistant"


def retained_configs(broker) -> dict[str, dict]:
    """What a Home Assistant starting now would find (the broker's retained configs)."""
    sub = Subscriber(broker, f"{PREFIX}/#", client_id="ha-now")
    try:
        time.sleep(0.5)  # retained messages come right after the subscription
        return {m.topic: json.loads(m.payload) for m in sub.on(f"{PREFIX}/#") if m.payload}
    finally:
        sub.close()


def test_every_variable_makes_a_valid_entity():
    messages = config_messages(
        PREFIX,
        INFO,
        load="main",
        wiring="3P4W",
        names=[v.name for v in ALL],
        state_topic="emsbox/dev/main/state",
        status_topic="emsbox/dev/status",
    )
    assert len(messages) == len(ALL)
    for topic, payload in messages.items():
        assert problems(topic, json.loads(payload)) == [], topic
    by_name = {
        json.loads(p)["unique_id"].rsplit(":", 1)[1]: json.loads(p) for p in messages.values()
    }
    energy = by_name["kwh_imp"]
    assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
        "energy",
        "total_increasing",
        "kWh",
    )
    assert by_name["kwh_exp_partial"]["state_class"] == "total_increasing"
    assert (
        by_name["p_sys"]["device_class"] == "power"
        and by_name["p_sys"]["unit_of_measurement"] == "W"
    )
    assert "unit_of_measurement" not in by_name["pf_sys"]


def test_the_schema_check_catches_what_home_assistant_refuses():
    good = {
        "name": "x",
        "unique_id": "u",
        "state_topic": "s",
        "device": {"identifiers": ["d"]},
        "device_class": "energy",
        "state_class": "total_increasing",
        "unit_of_measurement": "kWh",
    }
    assert problems("homeassistant/sensor/n/o/config", good) == []
    assert problems("homeassistant/sensor/n.x/o/config", good)
    assert problems("homeassistant/sensor/n/o/config", good | {"unit_of_measurement": "kVAh"})
    assert problems("homeassistant/sensor/n/o/config", good | {"state_class": "measurement"})
    assert problems(
        "homeassistant/sensor/n/o/config", good | {"value_template": "{{ value_json.values.x }}"}
    )
    assert problems("homeassistant/sensor/n/o/config", good | {"device": {"name": "no ids"}})
    assert problems("homeassistant/sensor/n/o/config", good | {"bogus": 1})


def test_discovery_announces_each_load_and_removes_it_when_turned_off(broker, harness):
    sub = Subscriber(broker, f"{PREFIX}/#", "emsbox/#")
    harness.apply(plain(broker, discovery=True))
    harness.wait_connected()
    harness.measure(2)
    announced = retained_configs(broker)
    loads = {c["device"]["identifiers"][0] for c in announced.values()}
    assert loads == {f"{DEVICE}:main", f"{DEVICE}:hvac"}
    for topic, config in announced.items():
        assert problems(topic, config) == [], topic
        assert config["state_topic"].startswith(f"emsbox/{DEVICE}/")
        assert config["availability_topic"] == f"emsbox/{DEVICE}/status"
    names = {t.split("/")[3] for t in announced}
    assert {"main-p_sys", "main-kwh_imp", "hvac-partial_running"} <= names
    # Every template names a member of the state the entity reads.
    state = sub.wait_for(f"emsbox/{DEVICE}/main/state")[-1].json()
    for topic, config in announced.items():
        if config["state_topic"].endswith("/main/state"):
            variable = topic.split("/")[3].removeprefix("main-")
            assert variable in state and f"value_json.{variable}" in config["value_template"]
    # Off: every entity is removed (an empty retained message replaces each config).
    harness.apply(plain(broker, discovery=False))
    harness.wait_connected()
    harness.measure(1)
    assert retained_configs(broker) == {}
    sub.close()


def test_a_removed_load_disappears_from_home_assistant(broker, harness):
    harness.apply(plain(broker, discovery=True))
    harness.wait_connected()
    harness.measure(2)
    assert any("/hvac-" in t for t in retained_configs(broker))
    harness.apply(plain(broker, discovery=True), loads=["main"])
    harness.wait_connected()
    harness.measure(2, loads=["main"])
    left = retained_configs(broker)
    assert left and not any("/hvac-" in t for t in left)


def test_discovery_is_announced_again_when_home_assistant_restarts(broker, harness):
    sub = Subscriber(broker, f"{PREFIX}/sensor/{DEVICE}/main-p_sys/config")
    harness.apply(plain(broker, discovery=True))
    harness.wait_connected()
    harness.measure(2)
    sub.wait_for(f"{PREFIX}/sensor/{DEVICE}/main-p_sys/config", 1)
    sub.publish(f"{PREFIX}/status", "online")  # Home Assistant's birth message
    harness.measure(2)
    sub.wait_for(f"{PREFIX}/sensor/{DEVICE}/main-p_sys/config", 2)
    sub.close()
