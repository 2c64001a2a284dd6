"""The MQTT gateway's pure parts: topics, payloads, Azure sign-in, commands, discovery, config."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import random
import re
from urllib.parse import parse_qsl, quote_plus, unquote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsbox import variables
from emsbox.bus import Reading
from emsbox.config import ConfigError, validate
from emsbox.gateways.mqtt import azure, discovery
from emsbox.gateways.mqtt.commands import (
    MAX_BYTES,
    MAX_ID_LENGTH,
    CommandError,
    MqttCommand,
    parse_command,
    request_id,
    result_json,
)
from emsbox.gateways.mqtt.config import MqttConfig, MqttProfile
from emsbox.gateways.mqtt.gateway import _InFlight, backoff_s
from emsbox.gateways.mqtt.payloads import record_payload, state_json, variable_text
from emsbox.gateways.mqtt.topics import Topics
from emsbox.samples import Wiring

T0 = 1_700_006_400  # 2023-11-15 00:00:00 UTC
LOADS = ["main", "hvac"]


def no_constants(text: str) -> object:
    """``text`` decoded, failing on NaN and infinities (which are not JSON)."""

    def refuse(constant: str) -> object:
        pytest.fail(f"{constant} in {text}")

    return json.loads(text, parse_constant=refuse)


# -- topics ------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [MqttProfile.GENERIC, MqttProfile.AWS])
def test_generic_and_aws_topics_lie_under_prefix_and_device(profile):
    topics = Topics.of(MqttConfig(profile=profile, topic_prefix="site/meters"), "box-1")
    assert not topics.azure
    assert topics.device_id == "box-1"
    assert topics.status() == "site/meters/box-1/status"
    assert topics.state("main") == "site/meters/box-1/main/state"
    assert topics.variable("main", "p_sys") == "site/meters/box-1/main/p_sys"
    assert topics.record("hvac") == "site/meters/box-1/hvac/record"
    assert topics.command() == "site/meters/box-1/command"
    assert topics.command_result() == "site/meters/box-1/command/result"


def test_generic_topics_use_the_default_prefix():
    topics = Topics.of(MqttConfig(), "emsbox-0042")
    assert topics.state("main") == "emsbox/emsbox-0042/main/state"


def test_azure_puts_every_message_on_the_events_topic_with_a_property_bag():
    config = MqttConfig(profile=MqttProfile.AZURE, topic_prefix="ignored")
    topics = Topics.of(config, "box-1")
    events = "devices/box-1/messages/events/"
    assert topics.azure
    assert topics.status() == events + "type=status"
    assert topics.state("main") == events + "type=state&load=main"
    assert topics.record("hvac") == events + "type=record&load=hvac"
    assert topics.command_result() == events + "type=command_result"
    assert topics.command() == "devices/box-1/messages/devicebound/#"


def test_azure_property_bags_are_url_encoded():
    topics = Topics.of(MqttConfig(profile=MqttProfile.AZURE), "box-1")
    odd = "a b&c=d/é+%"
    topic = topics.state(odd)
    bag = topic.removeprefix("devices/box-1/messages/events/")
    assert bag == "type=state&load=a%20b%26c%3Dd%2F%C3%A9%2B%25"
    assert "/" not in bag
    assert parse_qsl(bag, keep_blank_values=True) == [("type", "state"), ("load", odd)]


# -- payloads ----------------------------------------------------------------------------


def a_reading(**changes: object) -> Reading:
    fields: dict[str, object] = {
        "load": "main",
        "wiring": Wiring.THREE_PHASE_4W,
        "timestamp_s": T0 + 0.123456,
        "duration_s": 1.0,
        "windows": 5,
        "values": {"p_sys": 1234.5, "v_l1": 230.25, "i_l1": math.nan, "q_sys": math.inf},
        "minimum": {},
        "maximum": {},
        "counters": {"kwh_imp": 123456.789, "kwh_exp": -math.inf, "hours_on": 12.5},
        "tariff": 2,
        "partial_running": False,
    }
    fields.update(changes)
    return Reading(**fields)


def test_state_json_holds_device_load_time_and_every_finite_variable():
    text = state_json(a_reading(), "box-1")
    body = no_constants(text)
    assert body == {
        "device": "box-1",
        "load": "main",
        "ts": T0 + 0.123,
        "time": "2023-11-15T00:00:00.123Z",
        "p_sys": 1234.5,
        "v_l1": 230.25,
        "kwh_imp": 123456.789,
        "hours_on": 12.5,
        "tariff": 2,
        "partial_running": False,
    }
    assert list(body)[:4] == ["device", "load", "ts", "time"]
    assert "values" not in body
    assert " " not in text


def test_state_json_of_a_reading_of_nothing_but_nan_has_only_the_header_and_state():
    reading = a_reading(values={"p_sys": math.nan}, counters={"kwh_imp": math.nan})
    body = no_constants(state_json(reading, "d"))
    assert set(body) == {"device", "load", "ts", "time", "tariff", "partial_running"}
    assert body["partial_running"] is False


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "true"), (False, "false"), (230.5, "230.5"), (0.1, "0.1"), (3, "3"), (-2.0, "-2.0")],
)
def test_variable_text(value, text):
    assert variable_text(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_variable_text_of_a_float_is_a_json_number_of_the_same_value(value):
    assert json.loads(variable_text(value)) == value


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)


@given(
    seq=st.integers(1, 2**62),
    device=st.text(min_size=1, max_size=20),
    record=st.dictionaries(
        st.text(max_size=8).filter(lambda k: k not in ("seq", "device")),
        json_scalars,
        max_size=8,
    ),
)
def test_record_payload_is_the_record_with_seq_and_device_first(seq, device, record):
    text = json.dumps(record, separators=(",", ":"))
    payload = record_payload(seq, device, text)
    body = json.loads(payload)
    assert body == {"seq": seq, "device": device, **record}
    assert list(body)[:2] == ["seq", "device"]


def test_record_payload_of_an_empty_object_and_of_a_stored_record():
    assert json.loads(record_payload(7, "d", "{}")) == {"seq": 7, "device": "d"}
    stored = '{"load":"main","ts":1700006400,"p_sys":1.5}'
    assert record_payload(12, "box-1", stored) == (
        '{"seq":12,"device":"box-1","load":"main","ts":1700006400,"p_sys":1.5}'
    )


@pytest.mark.parametrize("record", ["", "{", "[1]", "[]", "null", '"x"', "12"])
def test_record_payload_refuses_what_is_not_an_object(record):
    with pytest.raises(ValueError, match="outbox record 5 is not a JSON object"):
        record_payload(5, "d", record)


# -- Azure -------------------------------------------------------------------------------

HUB = "my-hub.azure-devices.net"
KEY = base64.b64encode(bytes(range(32))).decode("ascii")
EXPIRY = 1_700_003_600


def microsoft_sas_token(uri: str, key: str, expiry: int) -> str:
    """The token as Microsoft's Python sample makes it ("Control access to IoT Hub with
    shared access signatures", generate_sas_token without a policy name)."""
    sign_key = f"{quote_plus(uri)}\n{expiry}"
    signature = base64.b64encode(
        hmac.new(base64.b64decode(key), sign_key.encode("utf-8"), hashlib.sha256).digest()
    )
    return "SharedAccessSignature " + urlencode({"sr": uri, "sig": signature, "se": str(expiry)})


def test_azure_username():
    assert azure.username(HUB, "box-1") == f"{HUB}/box-1/?api-version=2021-04-12"


@pytest.mark.parametrize(
    ("device", "key", "expiry"),
    [
        ("box-1", KEY, EXPIRY),
        ("box.2_b", base64.b64encode(b"\xff" * 64).decode(), 2_000_000_000),
        ("x", base64.b64encode(b"k").decode(), 0),
    ],
)
def test_azure_sas_token_follows_microsofts_algorithm(device, key, expiry):
    token = azure.sas_token(HUB, device, key, expiry)
    assert token == microsoft_sas_token(f"{HUB}/devices/{device}", key, expiry)


def test_azure_sas_token_fields():
    token = azure.sas_token(HUB, "box-1", KEY, EXPIRY)
    assert token.startswith("SharedAccessSignature ")
    fields = token.removeprefix("SharedAccessSignature ").split("&")
    assert [f.split("=", 1)[0] for f in fields] == ["sr", "sig", "se"]
    sr, sig, se = (f.split("=", 1)[1] for f in fields)
    assert sr == "my-hub.azure-devices.net%2Fdevices%2Fbox-1"
    assert unquote(sr) == f"{HUB}/devices/box-1"
    assert se == str(EXPIRY)
    expected = hmac.new(bytes(range(32)), f"{sr}\n{EXPIRY}".encode(), hashlib.sha256).digest()
    assert base64.b64decode(unquote(sig)) == expected
    assert not set(sig) & set("+/=")  # the signature's base64 is URL-encoded
    # Another expiry or device signs something else.
    assert azure.sas_token(HUB, "box-1", KEY, EXPIRY + 1) != token
    assert azure.sas_token(HUB, "box-2", KEY, EXPIRY).split("&")[1] != fields[1]


# -- commands ----------------------------------------------------------------------------


def command(**body: object) -> bytes:
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("action", "verb"),
    [("start_partial", "start"), ("stop_partial", "stop"), ("reset_partial", "reset")],
)
def test_partial_counter_commands(action, verb):
    parsed = parse_command(command(action=action, load="hvac", id="42"), LOADS)
    assert parsed == MqttCommand("42", action, "hvac", None)
    assert parsed.verb == verb
    assert parse_command(command(action=action, load="main"), LOADS).id is None


@pytest.mark.parametrize("tariff", [1, 2])
def test_set_tariff(tariff):
    parsed = parse_command(command(action="set_tariff", load="main", tariff=tariff), LOADS)
    assert parsed == MqttCommand(None, "set_tariff", "main", tariff)
    assert parsed.verb == "tariff"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"reset please", "not a JSON object"),
        (b"\xff\xfe{}", "not a JSON object"),
        (b"", "not a JSON object"),
        (b"[1, 2]", "not a JSON object"),
        (b'"reset_partial"', "not a JSON object"),
        (b"null", "not a JSON object"),
        (b"NaN", "not a JSON object"),
        (
            command(action="reset_partial", load="main", force=True, zz=1),
            "unknown members: force, zz",
        ),
        (
            command(action="reboot", load="main"),
            "action must be one of start_partial, stop_partial, reset_partial, set_tariff",
        ),
        (command(load="main"), "action must be one of"),
        (command(action="reset_partial", load="garage"), "load must be one of main, hvac"),
        (command(action="reset_partial"), "load must be one of main, hvac"),
        (command(action="reset_partial", load=1), "load must be one of main, hvac"),
        (command(action="set_tariff", load="main"), "tariff must be 1 or 2"),
        (command(action="set_tariff", load="main", tariff=3), "tariff must be 1 or 2"),
        (command(action="set_tariff", load="main", tariff=0), "tariff must be 1 or 2"),
        (command(action="set_tariff", load="main", tariff=True), "tariff must be 1 or 2"),
        (command(action="set_tariff", load="main", tariff="1"), "tariff must be 1 or 2"),
        (command(action="set_tariff", load="main", tariff=None), "tariff must be 1 or 2"),
        (
            command(action="start_partial", load="main", tariff=1),
            "start_partial takes no tariff",
        ),
        (
            command(action="reset_partial", load="main", id=42),
            f"id must be a string of at most {MAX_ID_LENGTH} characters",
        ),
        (
            command(action="reset_partial", load="main", id="x" * (MAX_ID_LENGTH + 1)),
            "id must be a string of at most 100 characters",
        ),
    ],
)
def test_refused_commands_say_why(payload, message):
    with pytest.raises(CommandError, match="^" + re.escape(message)) as refused:
        parse_command(payload, LOADS)
    assert isinstance(refused.value, ValueError)


def test_a_command_may_be_4096_bytes_and_no_more():
    body = command(action="reset_partial", load="main", id="7")
    padded = body[:-1] + b" " * (MAX_BYTES - len(body)) + b"}"
    assert len(padded) == MAX_BYTES == 4096
    assert parse_command(padded, LOADS).id == "7"
    too_long = body[:-1] + b" " * (MAX_BYTES + 1 - len(body)) + b"}"
    with pytest.raises(CommandError, match="command longer than 4096 bytes"):
        parse_command(too_long, LOADS)
    assert request_id(too_long) is None


def test_an_id_of_100_characters_is_accepted():
    parsed = parse_command(command(action="reset_partial", load="main", id="x" * 100), LOADS)
    assert parsed.id == "x" * 100


@pytest.mark.parametrize("action", [["reset_partial"], {"reset_partial": 1}])
def test_an_action_that_is_not_a_string_is_refused(action):
    with pytest.raises(CommandError, match=r"^action must be one of"):
        parse_command(command(action=action, load="main"), LOADS)


def test_a_tariff_given_as_a_float_is_refused_or_kept():
    try:
        parsed = parse_command(b'{"action":"set_tariff","load":"main","tariff":2.0}', LOADS)
    except CommandError:
        return
    assert parsed.tariff == 2


@pytest.mark.parametrize(
    ("payload", "found"),
    [
        (command(action="reboot", id="a-1"), "a-1"),  # refused, but answerable
        (command(action="reset_partial", load="main"), None),
        (command(id=5), None),
        (command(id="x" * 101), None),
        (command(id="x" * 100), "x" * 100),
        (b"not json", None),
        (b'["id"]', None),
    ],
)
def test_request_id(payload, found):
    assert request_id(payload) == found


def test_result_json_shapes():
    tariff = MqttCommand("7", "set_tariff", "main", 2)
    assert json.loads(result_json("7", True, None, tariff, {"tariff": 2})) == {
        "id": "7",
        "ok": True,
        "action": "set_tariff",
        "load": "main",
        "result": {"tariff": 2},
    }
    assert json.loads(result_json(None, False, "not a JSON object")) == {
        "id": None,
        "ok": False,
        "error": "not a JSON object",
    }
    failed = json.loads(
        result_json("8", False, "busy", MqttCommand("8", "reset_partial", "hvac", None))
    )
    assert failed == {
        "id": "8",
        "ok": False,
        "action": "reset_partial",
        "load": "hvac",
        "error": "busy",
    }
    assert json.loads(result_json(None, True, None, tariff)) == {
        "id": None,
        "ok": True,
        "action": "set_tariff",
        "load": "main",
    }


# -- discovery ---------------------------------------------------------------------------

# unit → (device_class, unit_of_measurement) of the measured values, per Home Assistant's
# sensor documentation.
MEASURED = {
    "V": ("voltage", "V"),
    "A": ("current", "A"),
    "W": ("power", "W"),
    "var": ("reactive_power", "var"),
    "VA": ("apparent_power", "VA"),
    "": ("power_factor", None),
    "Hz": ("frequency", "Hz"),
    "%": (None, "%"),
}
COUNTED = {
    "kWh": "energy",
    "kvarh": "reactive_energy",
    "kVAh": None,
    "h": "duration",
}


@pytest.mark.parametrize("var", variables.ALL, ids=lambda v: v.name)
def test_entity_class_of_every_variable(var):
    cls = discovery.entity_class(var.name)
    if var.name == "partial_running":
        assert (cls.component, cls.state_class, cls.unit) == ("binary_sensor", None, None)
        assert cls.device_class == "running"
    elif var.name == "tariff":
        assert (cls.component, cls.device_class, cls.state_class, cls.unit) == (
            "sensor",
            None,
            None,
            None,
        )
    elif var.kind is variables.Kind.INSTANTANEOUS:
        assert cls.component == "sensor"
        assert (cls.device_class, cls.unit) == MEASURED[var.unit]
        assert cls.state_class == "measurement"
        assert isinstance(cls.precision, int)
    else:
        assert var.kind in (variables.Kind.ENERGY, variables.Kind.HOURS)
        assert cls.component == "sensor"
        assert cls.device_class == COUNTED[var.unit]
        assert (cls.state_class, cls.unit) == ("total_increasing", var.unit)
        assert isinstance(cls.precision, int)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("kwh_imp", ("energy", "total_increasing", "kWh")),
        ("kwh_exp_partial", ("energy", "total_increasing", "kWh")),
        ("kvarh_q2", ("reactive_energy", "total_increasing", "kvarh")),
        ("kvah", (None, "total_increasing", "kVAh")),
        ("hours_on", ("duration", "total_increasing", "h")),
        ("p_sys", ("power", "measurement", "W")),
        ("pf_l1", ("power_factor", "measurement", None)),
        ("thd_v_l12", (None, "measurement", "%")),
        ("freq", ("frequency", "measurement", "Hz")),
    ],
)
def test_entity_classes_by_name(name, expected):
    cls = discovery.entity_class(name)
    assert (cls.device_class, cls.state_class, cls.unit) == expected


def test_node_id_keeps_only_letters_digits_underscores_and_dashes():
    assert discovery.node_id("emsbox.site-1_a") == "emsbox_site-1_a"
    assert discovery.node_id("a.b.c") == "a_b_c"
    assert discovery.node_id("plain-0042") == "plain-0042"


INFO = discovery.DeviceInfo("box.1", "Home", "0.1.0")


def messages_of(load: str, names: list[str]) -> dict[str, str]:
    return discovery.config_messages(
        "homeassistant",
        INFO,
        load=load,
        wiring="3P4W",
        names=names,
        state_topic=f"emsbox/box.1/{load}/state",
        status_topic="emsbox/box.1/status",
    )


def test_config_messages_of_every_variable():
    names = [v.name for v in variables.ALL]
    out = messages_of("main", [*names, "bogus"])
    assert len(out) == len(names)  # the unknown name is left out
    seen_ids = set()
    for name in names:
        cls = discovery.entity_class(name)
        topic = f"homeassistant/{cls.component}/box_1/main-{name}/config"
        body = json.loads(out[topic])
        seen_ids.add(body["unique_id"])
        assert body["unique_id"] == f"box_1:main:{name}"
        assert body["name"] == variables.BY_NAME[name].description
        assert body["state_topic"] == "emsbox/box.1/main/state"
        assert body["availability_topic"] == "emsbox/box.1/status"
        assert (body["payload_available"], body["payload_not_available"]) == ("online", "offline")
        template = body["value_template"]
        assert f"value_json.{name} " in template
        assert "values" not in template and "values" not in body
        if cls.component == "binary_sensor":
            assert template == f"{{{{ 'ON' if value_json.{name} else 'OFF' }}}}"
        else:
            assert template == f"{{{{ value_json.{name} }}}}"
        assert body.get("device_class") == cls.device_class
        assert body.get("state_class") == cls.state_class
        assert body.get("unit_of_measurement") == cls.unit
        assert None not in body.values()
        assert body["device"] == {
            "identifiers": ["box_1:main"],
            "name": "Home main",
            "manufacturer": "emsbox",
            "model": "Energy meter (3P4W)",
            "sw_version": "0.1.0",
        }
    assert len(seen_ids) == len(names)


def test_unique_ids_and_topics_differ_between_loads():
    names = [v.name for v in variables.ALL]
    main, hvac = messages_of("main", names), messages_of("hvac", names)
    assert not set(main) & set(hvac)
    ids = [json.loads(p)["unique_id"] for p in [*main.values(), *hvac.values()]]
    assert len(ids) == len(set(ids)) == 2 * len(names)


def test_unique_ids_differ_between_loads_whose_names_share_a_prefix():
    names = [v.name for v in variables.ALL]
    main, other = messages_of("main", names), messages_of("main_thd", names)
    assert not set(main) & set(other)


# -- configuration -----------------------------------------------------------------------


def problems(mqtt: dict) -> list[str]:
    """The problems ``emsbox.config.validate`` finds in an [mqtt] table (none: [])."""
    try:
        validate({"mqtt": mqtt})
    except ConfigError as e:
        assert str(e).startswith("configuration: ")
        return e.problems
    return []


AZURE_SAS = {
    "enabled": True,
    "profile": "azure_iot_hub",
    "host": HUB,
    "device_id": "box-1",
    "azure_device_key": KEY,
}
AWS = {
    "enabled": True,
    "profile": "aws_iot_core",
    "host": "abc-ats.iot.eu-west-1.amazonaws.com",
    "device_id": "box-1",
    "client_cert_file": "device.pem",
    "client_key_file": "device.key",
}


def test_the_default_is_off_and_valid():
    config = validate({}).mqtt
    assert config == MqttConfig()
    assert not config.enabled
    assert problems({}) == []


def test_a_disabled_gateway_is_not_checked_for_consistency():
    inconsistent = {
        "profile": "azure_iot_hub",
        "tls": False,
        "protocol": "5",
        "discovery": True,
        "per_variable_topics": True,
        "client_cert_file": "only-a-cert.pem",
    }
    assert problems(inconsistent) == []
    assert problems({"profile": "aws_iot_core", "tls": False}) == []


@pytest.mark.parametrize("host", ["", "   "])
def test_enabled_without_a_host_is_refused(host):
    assert problems({"enabled": True, "host": host}) == ["mqtt: host: the broker's host is needed"]


def test_a_generic_broker_needs_only_a_host():
    assert problems({"enabled": True, "host": "broker.local", "tls": False, "port": 1883}) == []


@pytest.mark.parametrize(
    "files", [{"client_cert_file": "c.pem"}, {"client_key_file": "k.pem"}], ids=["cert", "key"]
)
def test_a_client_certificate_needs_its_key_and_the_key_its_certificate(files):
    assert problems({"enabled": True, "host": "h", **files}) == [
        "mqtt: client_cert_file, client_key_file: give both or neither"
    ]
    assert (
        problems({"enabled": True, "host": "h", "client_cert_file": "c", "client_key_file": "k"})
        == []
    )


def test_a_valid_azure_configuration():
    assert problems(AZURE_SAS) == []
    x509 = {
        **AZURE_SAS,
        "azure_auth": "x509",
        "azure_device_key": "",
        "client_cert_file": "c.pem",
        "client_key_file": "k.pem",
    }
    assert problems(x509) == []


def test_azure_refuses_each_setting_it_cannot_use_and_names_it():
    bad = {
        **AZURE_SAS,
        "tls": False,
        "device_id": "",
        "protocol": "5",
        "discovery": True,
        "per_variable_topics": True,
        "azure_device_key": "",
    }
    [line] = problems(bad)
    assert line.startswith("mqtt: ")
    parts = line.removeprefix("mqtt: ").split("; ")
    assert [p.split(":", 1)[0] for p in parts] == [
        "tls",
        "device_id",
        "protocol",
        "discovery",
        "per_variable_topics",
        "azure_device_key",
    ]
    assert "needs TLS" in parts[0] and "3.1.1" in parts[2]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"tls": False}, "tls"),
        ({"device_id": ""}, "device_id"),
        ({"protocol": "5"}, "protocol"),
        ({"discovery": True}, "discovery"),
        ({"per_variable_topics": True}, "per_variable_topics"),
        ({"azure_device_key": ""}, "azure_device_key"),
        ({"azure_auth": "x509", "azure_device_key": ""}, "client_cert_file"),
    ],
)
def test_each_azure_requirement_alone(change, key):
    [line] = problems({**AZURE_SAS, **change})
    assert line.startswith(f"mqtt: {key}: ")
    assert ";" not in line


@pytest.mark.parametrize("key", ["not base64!", "abc", "QUJDRA=", "a=b="])
def test_the_azure_key_must_be_base64(key):
    assert problems({**AZURE_SAS, "azure_device_key": key}) == [
        "mqtt.azure_device_key: not a base64 key (copy the device's primary key)"
    ]
    # Even while off: the field itself is checked.
    assert problems({"azure_device_key": key})[0].startswith("mqtt.azure_device_key: ")


def test_the_azure_key_is_not_echoed_in_problems():
    secret = "secret-not-base64!"
    try:
        validate({"mqtt": {**AZURE_SAS, "azure_device_key": secret}})
    except ConfigError as e:
        assert secret not in str(e)
    else:
        pytest.fail("a key that is not base64 was accepted")


def test_aws_needs_tls_a_client_certificate_and_a_thing_name():
    assert problems(AWS) == []
    [line] = problems(
        {**AWS, "tls": False, "client_cert_file": "", "client_key_file": "", "device_id": ""}
    )
    parts = line.removeprefix("mqtt: ").split("; ")
    assert [p.split(":", 1)[0] for p in parts] == ["tls", "client_cert_file", "device_id"]
    assert "AWS IoT Core" in line


@pytest.mark.parametrize("field", ["device_id", "client_id"])
@pytest.mark.parametrize("value", ["a/b", "a b", "a+b", "#", "é", "a:b"])
def test_ids_refuse_characters_that_break_topics(field, value):
    assert problems({field: value}) == [f"mqtt.{field}: use letters, digits, '_', '-' and '.' only"]


@pytest.mark.parametrize("field", ["device_id", "client_id"])
def test_ids_of_letters_digits_and_punctuation_are_accepted(field):
    assert problems({field: "Box_01-a.b"}) == []
    assert problems({field: ""}) == []


@pytest.mark.parametrize("field", ["topic_prefix", "discovery_prefix"])
@pytest.mark.parametrize("value", ["/a", "a/", "a//b", "a/+/b", "a/#", "a b", "é"])
def test_prefixes_refuse_what_is_not_topic_levels(field, value):
    assert problems({field: value}) == [
        f"mqtt.{field}: use topic levels of letters, digits, '_', '-' and '.' separated by '/'"
    ]


@pytest.mark.parametrize("field", ["topic_prefix", "discovery_prefix"])
def test_prefixes_of_topic_levels_are_accepted_and_empty_ones_refused(field):
    assert problems({field: "site_1/meters.a/x-y"}) == []
    [line] = problems({field: ""})
    assert line.startswith(f"mqtt.{field}: ")


# -- reconnecting and acknowledgement --------------------------------------------------------


@pytest.mark.parametrize("limit", [1.0, 5.0, 60.0, 3600.0])
def test_backoff_doubles_to_the_limit_with_jitter(limit):
    rng = random.Random(20231115)
    for failures in range(21):
        ceiling = min(limit, 2.0**failures)
        waits = [backoff_s(failures, limit, rng) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling <= limit for w in waits), (failures, waits)
        assert len(set(waits)) > 1  # randomised, so many devices do not return in step
    assert limit / 2 <= backoff_s(10_000, limit, rng) <= limit


def test_backoff_is_repeatable_for_a_seed():
    first = [backoff_s(f, 60.0, random.Random(7)) for f in range(10)]
    again = [backoff_s(f, 60.0, random.Random(7)) for f in range(10)]
    assert first == again


def test_in_flight_in_order():
    inflight = _InFlight()
    for mid, seq in ((10, 1), (11, 2), (12, 3)):
        inflight.sent(mid, seq)
    assert len(inflight) == 3 and inflight.acknowledged_through is None
    assert not inflight.acked(11)  # 1 is not acknowledged yet
    assert inflight.acknowledged_through is None
    assert inflight.acked(10)
    assert inflight.acknowledged_through == 2
    assert not inflight.acked(10)  # twice
    assert not inflight.acked(99)  # unknown
    assert inflight.acked(12)
    assert inflight.acknowledged_through == 3
    assert len(inflight) == 0


# An operation: send the next record, or acknowledge the i-th sent one (modulo those sent),
# or acknowledge a message id never used.
operations = st.lists(
    st.one_of(
        st.just(("send", 0)),
        st.tuples(st.just("ack"), st.integers(0, 1000)),
        st.just(("unknown", 0)),
    ),
    max_size=120,
)


@settings(max_examples=200)
@given(ops=operations, first_seq=st.integers(1, 10**6), gaps=st.lists(st.integers(1, 3)))
def test_in_flight_acknowledges_only_a_prefix_of_what_was_sent(ops, first_seq, gaps):
    inflight = _InFlight()
    sent: list[tuple[int, int]] = []  # (mid, seq) in sending order
    acked_mids: set[int] = set()
    seq = first_seq
    through = None
    for kind, index in ops:
        if kind == "send":
            mid = 1 + len(sent) * 7 % 65_535  # message ids as paho hands them out
            sent.append((mid, seq))
            inflight.sent(mid, seq)
            seq += gaps[len(sent) % len(gaps)] if gaps else 1
            continue
        if kind == "unknown" or not sent:
            assert not inflight.acked(70_000)
            assert inflight.acknowledged_through == through
            continue
        mid, _ = sent[index % len(sent)]
        new = mid not in acked_mids
        acked_mids.add(mid)
        prefix = 0
        while prefix < len(sent) and sent[prefix][0] in acked_mids:
            prefix += 1
        expected = sent[prefix - 1][1] if prefix else None
        moved = inflight.acked(mid)
        assert moved == (new and expected != through)
        through = expected
        assert inflight.acknowledged_through == through
        assert len(inflight) == len(sent) - len(acked_mids)
