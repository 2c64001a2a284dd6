"""A running service with users of every role and their API tokens, for the API tests."""

import time
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from emsbox.app import Service
from emsbox.config import validate
from emsbox.web.accounts import Role
from emsbox.web.api import create_app

PASSWORD = "correct horse battery"


@dataclass
class Api:
    """The service, an HTTP client of its app and a token per role."""

    service: Service
    client: TestClient
    tokens: dict[str, str]

    def headers(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}


def wait_for_reading(service: Service, load: str = "main", timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while service.bus.latest(load) is None:
        assert time.monotonic() < deadline, "no reading"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    config = validate({"meter": {"loads": [{"name": "hvac"}]}, "site": {"timezone": "Europe/Rome"}})
    service = Service(config, data_dir)
    tokens = {}
    for role in Role:
        service.accounts.add_user(role.value, PASSWORD, role)
        _, tokens[role.value] = service.accounts.create_token(f"{role.value}-t", role, role.value)
    service.start()
    try:
        wait_for_reading(service)
        wait_for_reading(service, "hvac")
        with TestClient(create_app(service), base_url="https://testserver") as client:
            yield Api(service, client, tokens)
    finally:
        service.stop()
