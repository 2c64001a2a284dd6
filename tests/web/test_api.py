"""The REST API on a running service: values, history, energy, commands, config, accounts."""

import json
import time

import pytest

PASSWORD = "correct horse battery"  # as the api fixture gives every user


def get(api, url, role="viewer", **params):
    return api.client.get(url, params=params, headers=api.headers(role))


def test_health_needs_no_credentials(api):
    r = api.client.get("/api/v1/health")
    assert r.status_code == 200
    assert r.json()["status"] in ("ok", "degraded") and r.json()["version"]


def test_loads_list_every_configured_load(api):
    loads = get(api, "/api/v1/loads").json()
    assert [(x["name"], x["wiring"], x["source"]) for x in loads] == [
        ("main", "3P4W", "simulator"),
        ("hvac", "3P4W", "simulator"),
    ]
    assert all(x["healthy"] for x in loads)


def test_now_is_one_consistent_timestamped_set(api):
    body = get(api, "/api/v1/loads/main/now").json()
    values = body["values"]
    assert body["load"] == "main" and body["timestamp"].endswith("+00:00")
    assert abs(body["timestamp_s"] - time.time()) < 5
    assert 200 < values["v_l1"] < 260 and 45 < values["freq"] < 55
    # p_sys is the sum of the phases of the same reading.
    assert values["p_sys"] == pytest.approx(values["p_l1"] + values["p_l2"] + values["p_l3"])
    assert values["tariff"] == 1 and "kwh_imp" in values and "hours_on" in values
    reading = api.service.bus.latest("main")
    assert body["timestamp_s"] <= reading.timestamp_s


@pytest.mark.parametrize(
    ("url", "params", "status", "message"),
    [
        ("/api/v1/loads/nope/now", {}, 404, "no load named 'nope'"),
        ("/api/v1/loads/main/history", {"vars": "p_sys", "points": 0}, 422, "query.points"),
        ("/api/v1/loads/main/history", {"vars": "p_sys", "points": "many"}, 422, "query.points"),
        ("/api/v1/loads/main/history", {"vars": "warp_factor"}, 400, "warp_factor"),
        ("/api/v1/loads/main/history", {"vars": ","}, 400, "vars"),
        ("/api/v1/loads/main/history", {}, 422, "query.vars: Field required"),
        ("/api/v1/loads/main/history", {"vars": "p_sys", "start": "yesterday"}, 400, "start"),
        (
            "/api/v1/loads/main/history",
            {"vars": "p_sys", "start": "2026-01-02", "end": "2026-01-01"},
            400,
            "",
        ),
        ("/api/v1/loads/main/energy", {"period": "hour"}, 422, "query.period"),
        ("/api/v1/loads/main/energy", {"end": "soon"}, 400, "end"),
        ("/api/v1/stream", {"loads": "main,ghost"}, 404, "ghost"),
        (
            "/api/v1/loads/main/history",
            {"vars": "p_sys", "start": "1e300", "end": "2e300"},
            400,
            "outside",
        ),
        ("/api/v1/loads/main/history", {"vars": "p_sys", "start": "-1e12"}, 400, "outside"),
        ("/api/v1/loads/main/history", {"vars": "p_sys", "start": "nan"}, 400, "outside"),
        (
            "/api/v1/loads/main/history",
            {"vars": "p_sys", "start": "0001-01-01T00:00:00"},
            400,
            "start",
        ),
        ("/api/v1/loads/main/energy", {"start": "1e300", "end": "2e300"}, 400, "outside"),
    ],
)
def test_bad_parameters_are_clear_4xx_json_errors(api, url, params, status, message):
    r = get(api, url, **params)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def _history_with_data(api, **params):
    # Readings reach the store's first tier once their second is over; wait for a few.
    deadline = time.monotonic() + 20
    while True:
        api.service.store.flush()
        end = time.time()
        r = get(api, "/api/v1/loads/main/history", start=end - 60, end=end, **params)
        assert r.status_code == 200, r.text
        series = r.json()["series"]
        if series and len(next(iter(series.values()))["t"]) >= 3:
            return r.json()
        assert time.monotonic() < deadline, r.text
        time.sleep(0.5)


def test_extreme_but_valid_times_never_give_500(api):
    _history_with_data(api, vars="p_sys", points=60)
    for params in (
        {"end": "9999-12-31T23:59:59"},
        {"start": "0", "end": "9999-12-31T23:59:59", "period": "year"},
        {"start": "1970-01-01T00:00:00+14:00", "period": "week"},
    ):
        r = get(api, "/api/v1/loads/main/energy", **params)
        assert r.status_code in (200, 400), (params, r.text)
    r = get(api, "/api/v1/loads/main/history", vars="p_sys", start="0", end="253402300799")
    assert r.status_code == 200, r.text


def test_history_returns_downsampled_series_from_the_store(api):
    body = _history_with_data(api, vars="p_sys,v_l1,kwh_imp", points=20)
    assert body["tier_resolution_s"] == 1
    assert set(body["series"]) == {"p_sys", "v_l1", "kwh_imp"}
    v = body["series"]["v_l1"]
    assert 1 <= len(v["t"]) <= 20
    for lo, avg, hi in zip(v["min"], v["avg"], v["max"], strict=True):
        assert lo <= avg <= hi and 200 < avg < 260
    assert v["t"] == sorted(v["t"])


def test_energy_per_day_in_the_site_time_zone(api):
    api.service.store.flush()
    r = get(api, "/api/v1/loads/main/energy", period="day")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["timezone"] == "Europe/Rome" and body["period"] == "day"
    assert body["periods"], body
    today = body["periods"][-1]
    assert today["complete"] is False
    assert today["values"]["kvah"] >= 0


def test_partial_counters_start_stop_reset(api):
    url = "/api/v1/loads/hvac/partial"
    h = api.headers("installer")
    r = api.client.post(url, json={"action": "stop"}, headers=h)
    assert r.status_code == 200 and r.json()["values"]["partial_running"] is False
    r = api.client.post(url, json={"action": "reset"}, headers=h)
    assert r.json()["values"]["kvah_partial"] == 0.0
    assert r.json()["values"]["kvah"] > 0
    r = api.client.post(url, json={"action": "start"}, headers=h)
    assert r.json()["values"]["partial_running"] is True
    bad = api.client.post(url, json={"action": "explode"}, headers=h)
    assert bad.status_code == 422 and "body.action" in bad.json()["detail"]


def test_config_read_validate_and_save(api):
    h = api.headers("installer")
    current = api.client.get("/api/v1/config", headers=h).json()
    assert current["meter"]["loads"][0]["name"] == "hvac"
    bad = json.loads(json.dumps(current))
    bad["meter"]["loads"][0]["ct_primary_a"] = -5
    r = api.client.put("/api/v1/config", json=bad, headers=h)
    assert r.status_code == 422
    assert r.json()["problems"] == ["meter.loads[0].ct_primary_a: Input should be greater than 0"]
    assert r.json()["detail"] == r.json()["problems"][0]
    missing = json.loads(json.dumps(current))
    missing["meter"]["loads"][0]["source"] = {"kind": "recording", "recording_file": "none.csv"}
    r = api.client.put("/api/v1/config", json=missing, headers=h)
    assert r.status_code == 422 and "meter.loads[0].source.recording_file: file not found" in r.text
    outside = json.loads(json.dumps(current))
    outside["meter"]["main"]["source"] = {"kind": "recording", "recording_file": "/etc/hostname"}
    r = api.client.put("/api/v1/config", json=outside, headers=h)
    assert r.status_code == 422 and "inside the data directory" in r.text
    for weird in ("Europe", "x" * 300):
        bad_zone = json.loads(json.dumps(current))
        bad_zone["site"]["timezone"] = weird
        r = api.client.put("/api/v1/config", json=bad_zone, headers=h)
        assert r.status_code == 422 and r.json()["problems"][0].startswith("site.timezone:")
    r = api.client.put(
        "/api/v1/config",
        content=(
            '{"store": {"tiers": [{"resolution_s": 1, "retention_h": Infinity}],'
            ' "logging_interval_s": 1}}'
        ),
        headers={**h, "content-type": "application/json"},
    )
    assert r.status_code == 422 and "store.tiers[0].retention_h" in r.text
    assert api.service.config.meter.loads[0].ct_primary_a == 100.0
    web_change = json.loads(json.dumps(current))
    web_change["web"]["session_hours"] = 1.0
    r = api.client.put("/api/v1/config", json=web_change, headers=h)
    assert r.status_code == 403 and "admin" in r.json()["detail"]
    good = json.loads(json.dumps(current))
    good["site"]["name"] = "Warehouse 7"
    r = api.client.put("/api/v1/config", json=good, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["restart_required"] is False  # the site applies at once
    saved = api.service.config_path.read_text()
    assert 'name = "Warehouse 7"' in saved
    assert api.service.config.site.name == "Warehouse 7"
    good["store"]["commit_interval_s"] = 7.0
    r = api.client.put("/api/v1/config", json=good, headers=h)
    assert r.status_code == 200 and r.json()["restart_required"] is True
    # The store keeps its configuration until restarted; GET shows the saved one.
    assert api.service.config.store.commit_interval_s != 7.0
    assert api.client.get("/api/v1/config", headers=h).json()["store"]["commit_interval_s"] == 7.0
    assert get(api, "/api/v1/system").json()["restart_required"] is True
    schema = api.client.get("/api/v1/config/schema", headers=h).json()
    assert "site" in schema["properties"]


def test_system_reports_every_part(api):
    body = get(api, "/api/v1/system").json()
    names = [p["name"] for p in body["parts"]]
    assert any(n.startswith("acquisition") for n in names) and "store" in names
    assert body["uptime_s"] > 0 and body["data_dir_used_bytes"] > 0


def test_prometheus_metrics(api):
    r = get(api, "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "# TYPE emsbox_kwh_imp_total counter" in text
    assert "# TYPE emsbox_p_sys gauge" in text
    assert 'emsbox_p_sys{load="main"}' in text and 'emsbox_p_sys{load="hvac"}' in text
    # Each family's samples follow its TYPE line without interleaving.
    lines = text.splitlines()
    start = lines.index("# TYPE emsbox_p_sys gauge")
    assert lines[start + 1].startswith("emsbox_p_sys{") and lines[start + 2].startswith(
        "emsbox_p_sys{"
    )


def test_login_session_logout(api):
    client = api.client
    r = client.post("/api/v1/login", json={"name": "viewer", "password": "wrong"})
    assert r.status_code == 401
    r = client.post("/api/v1/login", json={"name": "viewer", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    assert client.get("/api/v1/me").json()["via"] == "session"
    assert client.post("/api/v1/logout").status_code == 204
    client.cookies.clear()
    assert client.get("/api/v1/me").status_code == 401


def test_users_and_tokens_through_the_api(api):
    h = api.headers("admin")
    c = api.client
    r = c.post(
        "/api/v1/users", json={"name": "eve", "password": "short", "role": "viewer"}, headers=h
    )
    assert r.status_code == 400 and "8" in r.json()["detail"]
    r = c.post(
        "/api/v1/users", json={"name": "eve", "password": PASSWORD, "role": "viewer"}, headers=h
    )
    assert r.status_code == 201
    assert "eve" in [u["name"] for u in c.get("/api/v1/users", headers=h).json()]
    r = c.put("/api/v1/users/eve/role", json={"role": "installer"}, headers=h)
    assert r.json()["role"] == "installer"
    c.cookies.clear()
    assert c.post("/api/v1/login", json={"name": "eve", "password": PASSWORD}).status_code == 200
    r = c.post("/api/v1/tokens", json={"name": "grafana", "role": "admin"})
    assert r.status_code == 400  # above eve's own role
    r = c.post("/api/v1/tokens", json={"name": "grafana", "role": "viewer"})
    assert r.status_code == 201
    token = r.json()
    assert token["secret"] and token["owner"] == "eve"
    listed = c.get("/api/v1/tokens").json()
    assert [t["name"] for t in listed] == ["grafana"] and "secret" not in listed[0]
    bearer = {"Authorization": f"Bearer {token['secret']}"}
    assert c.get("/api/v1/loads", headers=bearer).status_code == 200
    assert c.delete(f"/api/v1/tokens/{token['id']}").status_code == 204
    assert c.get("/api/v1/loads", headers=bearer).status_code == 401
    r = c.put("/api/v1/me/password", json={"password": "another good one", "current_password": "x"})
    assert r.status_code == 403
    r = c.put(
        "/api/v1/me/password",
        json={"password": "another good one", "current_password": PASSWORD},
    )
    assert r.status_code == 204
    assert c.get("/api/v1/me").json()["name"] == "eve"  # this session stays
    c.cookies.clear()
    assert c.delete("/api/v1/users/eve", headers=h).status_code == 204
    assert c.delete("/api/v1/users/eve", headers=h).status_code == 400


def test_live_stream_sends_readings(api):
    h = api.headers("viewer")
    events = []
    with api.client.stream("GET", "/api/v1/stream", params={"loads": "hvac"}, headers=h) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
            if len(events) >= 2:
                break
    assert all(e["load"] == "hvac" and "p_sys" in e["values"] for e in events)


def test_a_command_that_times_out_does_not_stop_the_meter(api, monkeypatch):
    from emsbox.web.api import loads

    monkeypatch.setattr(loads, "COMMAND_TIMEOUT_S", 0.0)
    h = api.headers("installer")
    r = api.client.post("/api/v1/loads/main/partial", json={"action": "stop"}, headers=h)
    assert r.status_code in (200, 503)
    monkeypatch.setattr(loads, "COMMAND_TIMEOUT_S", 5.0)
    r = api.client.post("/api/v1/loads/main/partial", json={"action": "start"}, headers=h)
    assert r.status_code == 200 and r.json()["values"]["partial_running"] is True
    time.sleep(1.5)
    assert all(x["healthy"] for x in get(api, "/api/v1/loads").json())


def test_openapi_and_docs_need_credentials_and_work_offline(api):
    api.client.cookies.clear()
    assert api.client.get("/api/v1/openapi.json").status_code == 401
    assert api.client.get("/api/v1/docs").status_code == 401
    spec = get(api, "/api/v1/openapi.json").json()
    assert spec["info"]["title"] == "emsbox API" and "/api/v1/loads" in spec["paths"]
    page = get(api, "/api/v1/docs")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        r = api.client.get(f"/static/vendor/swagger-ui-dist-5.35.0/{asset}")
        assert r.status_code == 200 and len(r.content) > 10_000
