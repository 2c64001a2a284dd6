"""Alarms through the API of a running service: configured live, raised on the simulated
load, acknowledged by a user, cleared, and kept in the history."""

from __future__ import annotations

import time

from emsbox import app as app_module
from emsbox.control import alarm_watch as watch_module


def _configure(api, rules):
    config = api.client.get("/api/v1/config", headers=api.headers("installer")).json()
    config["alarms"] = {"rules": rules}
    r = api.client.put("/api/v1/config", json=config, headers=api.headers("installer"))
    assert r.status_code == 200, r.text
    assert r.json()["restart_required"] is False


def _alarm(api, name):
    r = api.client.get("/api/v1/alarms", headers=api.headers("viewer"))
    assert r.status_code == 200, r.text
    (found,) = [a for a in r.json() if a["name"] == name]
    return found


def _until(api, name, what, timeout_s=15.0):
    deadline = time.monotonic() + timeout_s
    while not what(alarm := _alarm(api, name)):
        assert time.monotonic() < deadline, alarm
        time.sleep(0.1)
    return alarm


def test_the_default_alarm_watches_the_supply_voltage(api):
    every = api.client.get("/api/v1/alarms", headers=api.headers("viewer")).json()
    (default,) = [a for a in every if not a["system"]]
    assert default["name"] == "Supply voltage out of range"
    assert (default["condition"], default["low"], default["high"]) == ("outside", 207.0, 253.0)
    assert default["active"] is False  # the simulator's supply is near 230 V
    assert 200 < _until(api, default["name"], lambda a: a["value"] is not None)["value"] < 260


def test_a_latched_alarm_is_raised_acknowledged_and_cleared(api):
    rule = {
        "name": "Any voltage",
        "variable": "v_l1",
        "condition": "above",
        "high": 1.0,
        "latching": True,
    }
    _configure(api, [rule])
    raised = _until(api, "Any voltage", lambda a: a["active"])
    assert raised["acknowledged"] is False and raised["since_s"] > 0 and raised["value"] > 1
    # The condition goes; latched, the alarm stays until someone acknowledges it.
    _configure(api, [rule | {"high": 1e6}])
    time.sleep(1.5)
    assert _alarm(api, "Any voltage")["active"] is True
    r = api.client.post("/api/v1/alarms/Any voltage/ack", headers=api.headers("viewer"))
    assert r.status_code == 200, r.text
    assert r.json()["acknowledged"] is True and r.json()["alarm"]["active"] is False
    again = api.client.post("/api/v1/alarms/Any voltage/ack", headers=api.headers("viewer"))
    assert again.json()["acknowledged"] is False
    history = api.client.get(
        "/api/v1/alarms/history", params={"alarm": "Any voltage"}, headers=api.headers("viewer")
    ).json()
    assert [(e["event"], e["by"]) for e in history[:3]] == [
        ("cleared", "token:viewer-t"),  # by the viewer's API token
        ("acknowledged", "token:viewer-t"),
        ("raised", None),
    ]


def test_unknown_alarms_and_bad_queries_are_refused(api):
    r = api.client.post("/api/v1/alarms/Nothing/ack", headers=api.headers("viewer"))
    assert r.status_code == 404 and "no alarm named" in r.json()["detail"]
    r = api.client.get("/api/v1/alarms/history?limit=0", headers=api.headers("viewer"))
    assert r.status_code == 422
    assert api.client.get("/api/v1/alarms").status_code == 401


def test_an_alarm_on_a_load_that_does_not_exist_is_refused(api):
    config = api.client.get("/api/v1/config", headers=api.headers("installer")).json()
    config["alarms"] = {
        "rules": [
            {"name": "X", "load": "boiler", "variable": "p_sys", "condition": "above", "high": 1}
        ]
    }
    r = api.client.put("/api/v1/config", json=config, headers=api.headers("installer"))
    assert r.status_code == 422
    assert set(r.json()["errors"]) == {"alarms.rules[0].load"}


def test_built_in_alarms_watch_the_system_and_are_acknowledged_like_the_others(api, monkeypatch):
    monkeypatch.setattr(watch_module, "SYSTEM_EVERY_S", 0.2)
    names = {a["name"] for a in _all(api) if a["system"]}
    until_names = time.monotonic() + 10
    while "System: no readings from main" not in names:
        assert time.monotonic() < until_names, names
        time.sleep(0.1)
        names = {a["name"] for a in _all(api) if a["system"]}
    assert {"System: store failing", "System: storage almost full", "System: clock jump"} <= names
    assert not any(a["active"] for a in _all(api) if a["system"])  # all is well
    # Less free space than asked for: the storage alarm is raised, with what is free.
    monkeypatch.setattr(app_module, "MIN_FREE_SHARE", 1.0)
    full = _until(api, "System: storage almost full", lambda a: a["active"])
    assert full["condition"] == "system" and "MB free in" in full["detail"]
    r = api.client.post(
        "/api/v1/alarms/System: storage almost full/ack", headers=api.headers("viewer")
    )
    assert r.status_code == 200 and r.json()["alarm"]["acknowledged"] is True
    monkeypatch.setattr(app_module, "MIN_FREE_SHARE", 0.0)
    _until(api, "System: storage almost full", lambda a: not a["active"])
    history = api.client.get(
        "/api/v1/alarms/history",
        params={"alarm": "System: storage almost full"},
        headers=api.headers("viewer"),
    ).json()
    assert [e["event"] for e in history] == ["cleared", "acknowledged", "raised"]
    # Turned off in the settings: no built-in alarms.
    config = api.client.get("/api/v1/config", headers=api.headers("installer")).json()
    config["alarms"]["system"] = False
    r = api.client.put("/api/v1/config", json=config, headers=api.headers("installer"))
    assert r.status_code == 200, r.text
    assert not any(a["system"] for a in _all(api))


def _all(api):
    r = api.client.get("/api/v1/alarms", headers=api.headers("viewer"))
    assert r.status_code == 200, r.text
    return r.json()
