"""The digital input and output through the API of a running service: states, the remote
output, the simulated input acting on the counters, roles, and the settings applied live."""

from __future__ import annotations

import json
import time


def _io(api, role="viewer"):
    r = api.client.get("/api/v1/io", headers=api.headers(role))
    assert r.status_code == 200, r.text
    return r.json()


def _configure(api, **io):
    config = api.client.get("/api/v1/config", headers=api.headers("installer")).json()
    config["io"] = {**config["io"], **io}
    r = api.client.put("/api/v1/config", json=config, headers=api.headers("installer"))
    assert r.status_code == 200, r.text
    assert r.json()["restart_required"] is False  # applied while running
    return r.json()


def _until(api, what, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not what(state := _io(api)):
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    return state


def test_the_defaults_are_a_simulated_status_input_and_no_output(api):
    state = _io(api)
    assert state["backend"] == "simulated"
    assert (state["input_function"], state["output_function"]) == ("status", "off")
    assert state["output_on"] is False and state["pulses"] is None


def test_the_output_is_switched_only_when_its_function_is_remote(api):
    r = api.client.put("/api/v1/io/output", json={"on": True}, headers=api.headers("installer"))
    assert r.status_code == 409 and "not remote" in r.json()["detail"]
    _configure(api, output_function="remote")
    r = api.client.put("/api/v1/io/output", json={"on": True}, headers=api.headers("viewer"))
    assert r.status_code == 403
    r = api.client.put("/api/v1/io/output", json={"on": True}, headers=api.headers("installer"))
    assert r.status_code == 200, r.text
    assert _until(api, lambda s: s["output_on"])["output_closed"] is True
    r = api.client.put("/api/v1/io/output", json={"on": "yes"}, headers=api.headers("installer"))
    assert r.status_code == 422
    _configure(api, output_function="off")
    assert _until(api, lambda s: not s["output_on"])["output_closed"] is False


def test_a_reset_input_resets_the_partial_counters_of_its_load(api):
    _configure(api, input_function="partial_reset", input_load="hvac", input_debounce_s=0.0)
    now = "/api/v1/loads/hvac/now"
    deadline = time.monotonic() + 20
    while api.client.get(now, headers=api.headers("viewer")).json()["values"]["kvah_partial"] <= 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    r = api.client.put("/api/v1/io/input", json={"closed": True}, headers=api.headers("installer"))
    assert r.status_code == 200, r.text
    assert _until(api, lambda s: s["input_active"])["input_closed"] is True
    # The reset reaches the counters: the partial apparent energy starts again from zero.
    deadline = time.monotonic() + 10
    while True:
        partial = api.client.get(now, headers=api.headers("viewer")).json()["values"]
        total = partial["kvah"]
        if partial["kvah_partial"] < 0.5 * total and partial["kvah_partial"] < 0.01:
            break
        assert time.monotonic() < deadline, partial
        time.sleep(0.2)
    api.client.put("/api/v1/io/input", json={"closed": False}, headers=api.headers("installer"))
    _until(api, lambda s: not s["input_active"])
    _configure(api, input_function="status", input_load="")


def test_io_settings_are_checked(api):
    config = api.client.get("/api/v1/config", headers=api.headers("installer")).json()
    config["io"] |= {"pulse_counter": "kvarh_imp", "pulse_width_s": 0.001, "input_function": "x"}
    r = api.client.put("/api/v1/config", json=config, headers=api.headers("installer"))
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert {"io.pulse_counter", "io.pulse_width_s", "io.input_function"} <= set(errors), json.dumps(
        errors
    )


def test_the_pulse_output_reports_its_count(api):
    _configure(api, output_function="pulse", pulses_per_kwh=10000, pulse_width_s=0.03)
    state = _until(api, lambda s: (s["pulses"] or 0) > 0, timeout_s=20)
    assert state["output_function"] == "pulse" and state["max_pulse_power_kw"] > 0
    _configure(api, output_function="off")


def test_the_input_and_pulses_must_name_a_load_that_exists(api):
    config = api.client.get("/api/v1/config", headers=api.headers("installer")).json()
    config["io"] |= {"input_load": "boiler", "pulse_load": "hvac"}
    r = api.client.put("/api/v1/config", json=config, headers=api.headers("installer"))
    assert r.status_code == 422
    assert r.json()["errors"] == {"io.input_load": "no load named 'boiler'; loads: main, hvac"}


def _io_part(api):
    parts = api.client.get("/api/v1/system", headers=api.headers("viewer")).json()["parts"]
    return next((p for p in parts if p["name"] == "digital I/O"), None)


def test_a_remote_io_module_is_used_and_its_health_reported(api):
    from emsbox.testing.io_module import IoModule

    assert _io_part(api) is None  # the simulated backend is no part of the health
    with IoModule() as module:
        _configure(
            api,
            backend="modbus",
            modbus_host="127.0.0.1",
            modbus_port=module.port,
            modbus_input_address=2,
            modbus_poll_interval_s=0.05,
            input_function="status",
            output_function="remote",
            modbus_output_address=6,
        )
        module.set_input(2, True)
        assert _until(api, lambda s: s["input_closed"])["backend_ok"] is True
        r = api.client.put(
            "/api/v1/io/input", json={"closed": False}, headers=api.headers("installer")
        )
        assert r.status_code == 409 and "only a simulated input" in r.json()["detail"]
        r = api.client.put("/api/v1/io/output", json={"on": True}, headers=api.headers("installer"))
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 10
        while not module.coil(6):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert _io_part(api)["healthy"] is True
    # The module is gone: shown, and the health is degraded.
    state = _until(api, lambda s: not s["backend_ok"])
    assert f"127.0.0.1:{module.port}" in state["backend_error"] and state["input_closed"]
    part = _io_part(api)
    assert part["healthy"] is False and part["detail"] == state["backend_error"]
    assert api.client.get("/api/v1/health").json()["status"] == "degraded"
    _configure(api, backend="simulated", output_function="off")
    assert _io_part(api) is None


def test_a_gpio_chip_that_is_missing_is_shown_not_fatal(api):
    _configure(api, backend="gpio", gpio_chip="/dev/gpiochip97")
    state = _io(api)
    assert state["backend"] == "gpio" and state["backend_ok"] is False
    assert state["backend_error"] == "/dev/gpiochip97: no such GPIO chip"
    assert _io_part(api) == {
        "name": "digital I/O",
        "healthy": False,
        "detail": "/dev/gpiochip97: no such GPIO chip",
    }
    _configure(api, backend="simulated")
    assert _io(api)["backend_ok"] is True
