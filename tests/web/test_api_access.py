"""Every route of the OpenAPI document, walked with no credentials and with every role."""

import re
import time

import pytest

from emsbox.web.accounts import Role

PASSWORD = "correct horse battery"

# The least role each route needs; None: no authentication. A new route must be added here,
# so nobody can add an endpoint without deciding who may use it.
ROUTES: dict[tuple[str, str], str | None] = {
    ("GET", "/api/v1/health"): None,
    ("POST", "/api/v1/login"): None,
    ("GET", "/api/v1/session"): None,
    ("GET", "/api/v1/setup"): None,
    ("POST", "/api/v1/setup/check"): None,  # 409 once an admin exists
    ("POST", "/api/v1/setup"): None,  # 409 once an admin exists
    ("GET", "/api/v1/me/preferences"): "viewer",
    ("PUT", "/api/v1/me/preferences"): "viewer",
    ("POST", "/api/v1/logout"): "viewer",
    ("GET", "/api/v1/me"): "viewer",
    ("PUT", "/api/v1/me/password"): "viewer",
    ("GET", "/api/v1/loads"): "viewer",
    ("GET", "/api/v1/loads/{load}/now"): "viewer",
    ("GET", "/api/v1/loads/{load}/history"): "viewer",
    ("GET", "/api/v1/loads/{load}/energy"): "viewer",
    ("POST", "/api/v1/loads/{load}/partial"): "installer",
    ("GET", "/api/v1/config"): "installer",
    ("PUT", "/api/v1/config"): "installer",
    ("GET", "/api/v1/config/schema"): "installer",
    ("GET", "/api/v1/system"): "viewer",
    ("GET", "/api/v1/variables"): "viewer",
    ("GET", "/api/v1/modbus/maps"): "viewer",
    ("GET", "/api/v1/modbus/maps/{name}.csv"): "viewer",
    ("GET", "/api/v1/mqtt/files"): "installer",
    ("PUT", "/api/v1/mqtt/files/{kind}"): "installer",  # refused (400): the body is no PEM
    ("GET", "/api/v1/io"): "viewer",
    ("PUT", "/api/v1/io/output"): "installer",  # refused (409 or 422): no remote output here
    ("PUT", "/api/v1/io/input"): "installer",
    ("GET", "/api/v1/alarms"): "viewer",
    ("GET", "/api/v1/alarms/history"): "viewer",
    ("POST", "/api/v1/alarms/{name}/ack"): "viewer",  # 404: no alarm of that name
    ("POST", "/api/v1/email/test"): "installer",  # 409: e-mail is off
    ("GET", "/api/v1/stream"): "viewer",
    ("GET", "/metrics"): "viewer",
    ("GET", "/api/v1/users"): "admin",
    ("POST", "/api/v1/users"): "admin",
    ("DELETE", "/api/v1/users/{name}"): "admin",
    ("PUT", "/api/v1/users/{name}/role"): "admin",
    ("PUT", "/api/v1/users/{name}/password"): "admin",
    ("GET", "/api/v1/tokens"): "viewer",
    ("POST", "/api/v1/tokens"): "viewer",
    ("DELETE", "/api/v1/tokens/{token_id}"): "viewer",
}
ORDER = ["viewer", "installer", "admin"]
# Routes that act on the logged-in user's own account: an API token may not use them.
SESSION_ONLY = {
    ("PUT", "/api/v1/me/password"),
    ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/me/preferences"),
    ("PUT", "/api/v1/me/preferences"),
}


def _routes(api):
    spec = api.client.get("/api/v1/openapi.json", headers=api.headers("viewer")).json()
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item]


def test_every_route_is_classified(api):
    assert sorted(_routes(api)) == sorted(ROUTES)


def _request(api, method, path, role, via="token"):
    url = re.sub(r"\{load\}", "main", path)
    url = url.replace("{name}", "nobody-here").replace("{token_id}", "no-such-token")
    url = url.replace("{kind}", "ca")
    params = {"vars": "p_sys"} if path.endswith("/history") else {}
    if path == "/api/v1/stream":
        params = {"loads": "no-such-load"}  # refused after authorisation, so it returns
    body = {} if method in ("POST", "PUT") else None
    if (method, path) == ("POST", "/api/v1/tokens"):
        body = {"name": f"walk-{time.monotonic_ns()}", "role": "viewer"}
    if (method, path) == ("PUT", "/api/v1/me/password"):
        body = {"password": PASSWORD, "current_password": PASSWORD}
    headers = api.headers(role) if via == "token" else {}
    api.client.cookies.clear()
    if via == "session" and role is not None:
        # A fresh session per request: the walk also calls logout, which ends it.
        api.client.cookies.set("emsbox_session", api.service.accounts.create_session(role, 600))
    return api.client.request(method, url, params=params, json=body, headers=headers)


@pytest.mark.parametrize("via", ["token", "session"])
@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_each_route_admits_exactly_the_roles_it_should(api, route, via):
    method, path = route
    needed = ROUTES[route]
    anonymous = _request(api, method, path, None, via)
    if needed is None:
        assert anonymous.status_code not in (401, 403)
        return
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["detail"]
    for role in ORDER:
        response = _request(api, method, path, role, via)
        allowed = ORDER.index(role) >= ORDER.index(needed)
        if via == "token" and route in SESSION_ONLY:
            allowed = False
        if allowed:
            assert response.status_code not in (401, 403, 500), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
        assert response.headers["content-type"].startswith("application/json") or (
            allowed and path == "/metrics"
        )


def test_bad_and_revoked_tokens_are_refused(api):
    api.client.cookies.clear()
    for bad in ("", "x", "emsbox_nope_nope", api.tokens["admin"] + "x"):
        r = api.client.get("/api/v1/loads", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401
    info, secret = api.service.accounts.create_token("short-lived", Role.VIEWER, "viewer")
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/api/v1/loads", headers=headers).status_code == 200
    api.service.accounts.revoke_token(info.id)
    assert api.client.get("/api/v1/loads", headers=headers).status_code == 401
