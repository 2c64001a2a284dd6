"""The first-start setup: open to anyone while no admin exists, closed for good once one does.

The web app's wizard checks each step here (``POST /setup/check``) and completes the setup
in one request (``POST /setup``): the admin account, the site, the main meter, the extension
loads, the logging interval and the protocol servers (Modbus TCP, MQTT, BACnet/IP). Field
names are configuration key paths (``site.timezone``, ``meter.loads[1].ct_primary_a``) plus
``admin.name`` and ``admin.password``, so that every problem can be shown next to its field.
"""

from __future__ import annotations

import asyncio
import threading
import zoneinfo
from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field

from emsbox.app import Service
from emsbox.config import Config, ConfigError, restore_secrets, to_data, validate
from emsbox.gateways.errors import SetupError
from emsbox.languages import LANGUAGES, NAMES
from emsbox.loads import ExtensionModule
from emsbox.samples import Wiring
from emsbox.sources.base import SourceError
from emsbox.web.account_types import check_name
from emsbox.web.accounts import AccountError, Role
from emsbox.web.api.accounts_routes import UserOut, open_session
from emsbox.web.api.config_routes import by_field, invalid
from emsbox.web.api.deps import ServiceDep
from emsbox.web.passwords import check_password_rule

router = APIRouter(prefix="/setup", tags=["setup"])

# What the wizard may set: the rest keeps its defaults (and the settings pages change it later).
MAIN_KEYS = frozenset(
    {"name", "wiring", "nominal_voltage_v", "nominal_frequency_hz", "as_single_phase_loads"}
)
LOAD_KEYS = frozenset({"name", "wiring", "module", "ct_primary_a", "ct_secondary_a"})
SITE_KEYS = frozenset({"name", "timezone", "language"})
MODBUS_KEYS = frozenset({"tcp_enabled", "tcp_port"})
MQTT_KEYS = frozenset({"enabled", "host", "port", "tls", "username", "password", "discovery"})
BACNET_KEYS = frozenset({"enabled", "port", "device_instance"})
DONE = "the first-start setup is done; log in instead"
# One setup at a time: two browsers racing must not both create the first admin.
_completing = threading.Lock()


class AdminIn(BaseModel):
    """The first admin account."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class MeterIn(BaseModel):
    """The main meter's settings and the extension loads (each a ``meter.loads[]`` entry)."""

    model_config = ConfigDict(extra="forbid")

    main: dict[str, Any] | None = None
    loads: list[dict[str, Any]] | None = Field(default=None, max_length=10)


class StoreIn(BaseModel):
    """The logging interval."""

    model_config = ConfigDict(extra="forbid")

    logging_interval_s: int | None = None


class SetupIn(BaseModel):
    """The wizard's answers so far; a part left out keeps its default."""

    model_config = ConfigDict(extra="forbid")

    admin: AdminIn | None = None
    site: dict[str, Any] | None = None
    meter: MeterIn | None = None
    store: StoreIn | None = None
    modbus: dict[str, Any] | None = None
    mqtt: dict[str, Any] | None = None
    bacnet: dict[str, Any] | None = None


class Choice(BaseModel):
    """One option of a list: its value and a label for people."""

    value: str | int
    label: str


class SetupState(BaseModel):
    """Whether the setup is open, with the defaults and choices the wizard offers."""

    needed: bool
    site_name: str = Field(description="The site's name, for the login page.")
    language: str = Field(description="The site's default language of the web app.")
    defaults: dict[str, Any] = Field(default_factory=dict)
    choices: dict[str, list[Choice]] = Field(default_factory=dict)


class CheckOut(BaseModel):
    """Problems by field (configuration key path, or admin.name / admin.password)."""

    errors: dict[str, str]


def _choices(config: Config) -> dict[str, list[Choice]]:
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC")
    return {
        "language": [Choice(value=code, label=NAMES[code]) for code in LANGUAGES],
        "timezone": [Choice(value=z, label=z.replace("_", " ")) for z in zones],
        "wiring": [Choice(value=w.value, label=w.value) for w in Wiring],
        "module": [Choice(value=m.value, label=m.value) for m in ExtensionModule],
        "logging_interval_s": [
            Choice(value=t.resolution_s, label=f"{t.resolution_s} s") for t in config.store.tiers
        ],
    }


def _unknown_keys(path: str, given: dict[str, Any], allowed: frozenset[str]) -> dict[str, str]:
    return {f"{path}.{k}": "not a setting of the setup" for k in given if k not in allowed}


def _build(body: SetupIn, base: Config) -> tuple[Config | None, dict[str, str]]:
    """The configuration the answers make, or the problems by field."""
    errors: dict[str, str] = {}
    data = to_data(base)
    if body.site is not None:
        errors |= _unknown_keys("site", body.site, SITE_KEYS)
        data["site"] = {**data["site"], **body.site}
    if body.meter is not None and body.meter.main is not None:
        errors |= _unknown_keys("meter.main", body.meter.main, MAIN_KEYS)
        data["meter"]["main"] = {**data["meter"]["main"], **body.meter.main}
    if body.meter is not None and body.meter.loads is not None:
        for i, load in enumerate(body.meter.loads):
            errors |= _unknown_keys(f"meter.loads[{i}]", load, LOAD_KEYS)
        data["meter"]["loads"] = body.meter.loads
    if body.store is not None and body.store.logging_interval_s is not None:
        data["store"]["logging_interval_s"] = body.store.logging_interval_s
    if body.modbus is not None:
        errors |= _unknown_keys("modbus", body.modbus, MODBUS_KEYS)
        data["modbus"] = {**data["modbus"], **body.modbus}
    if body.mqtt is not None:
        errors |= _unknown_keys("mqtt", body.mqtt, MQTT_KEYS)
        # The defaults show a stored password as the redaction mark: it keeps that password.
        answers = restore_secrets({"mqtt": body.mqtt}, base)["mqtt"]
        data["mqtt"] = {**data["mqtt"], **answers}
    if body.bacnet is not None:
        errors |= _unknown_keys("bacnet", body.bacnet, BACNET_KEYS)
        data["bacnet"] = {**data["bacnet"], **body.bacnet}
    if errors:
        return None, errors
    try:
        return validate(data, "setup"), {}
    except ConfigError as exc:
        return None, by_field(exc.problems)


def _admin_errors(admin: AdminIn | None, *, required: bool) -> dict[str, str]:
    if admin is None:
        return {"admin.name": "an admin account is needed"} if required else {}
    try:
        check_name(admin.name)
    except AccountError as exc:
        return {"admin.name": str(exc)}
    try:
        check_password_rule(admin.name, admin.password)
    except AccountError as exc:
        return {"admin.password": str(exc)}
    return {}


def _check(body: SetupIn, service: Service, *, final: bool) -> tuple[Config | None, CheckOut]:
    config, errors = _build(body, service.saved_config)
    errors = _admin_errors(body.admin, required=final) | errors
    return config, CheckOut(errors=errors)


def _refuse_when_done(service: Service) -> None:
    if service.accounts.has_admin():
        raise HTTPException(status.HTTP_409_CONFLICT, DONE)


@router.get("", response_model=SetupState, summary="Whether the first-start setup is open")
async def state(service: ServiceDep) -> SetupState:
    """Open (``needed``) until an admin exists; with the wizard's defaults and choices."""
    config = service.saved_config
    name, language = config.site.name, config.site.language
    if service.accounts.has_admin():
        return SetupState(needed=False, site_name=name, language=language)
    defaults = to_data(config)
    shown = to_data(config, redact=True)
    return SetupState(
        needed=True,
        site_name=name,
        language=language,
        defaults={
            "site": defaults["site"],
            "meter": {
                "main": {k: v for k, v in defaults["meter"]["main"].items() if k in MAIN_KEYS},
                "loads": [
                    {k: v for k, v in load.items() if k in LOAD_KEYS}
                    for load in defaults["meter"]["loads"]
                ],
            },
            "store": {"logging_interval_s": config.store.logging_interval_s},
            "modbus": {k: v for k, v in defaults["modbus"].items() if k in MODBUS_KEYS},
            # Open to anyone: a password stored before the setup is not shown.
            "mqtt": {k: v for k, v in shown["mqtt"].items() if k in MQTT_KEYS},
            # An instance derived from the serial number is null (the file leaves it out).
            "bacnet": config.bacnet.model_dump(include=set(BACNET_KEYS)),
        },
        choices=_choices(config),
    )


@router.post("/check", response_model=CheckOut, summary="Check the setup's answers so far")
async def check(body: SetupIn, service: ServiceDep) -> CheckOut:
    """Every problem of the parts given, by field; an empty ``errors`` means all is well."""
    _refuse_when_done(service)
    return (await asyncio.to_thread(_check, body, service, final=False))[1]


@router.post(
    "",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    summary="Complete the first-start setup",
)
async def complete(body: SetupIn, response: Response, service: ServiceDep) -> UserOut:
    """Create the admin, save and apply the settings, and log the admin in."""
    name = await asyncio.to_thread(_complete, body, service)
    open_session(response, service, name)
    return UserOut(name=name, role=Role.ADMIN)


def _complete(body: SetupIn, service: Service) -> str:
    with _completing:
        _refuse_when_done(service)
        config, result = _check(body, service, final=True)
        if body.admin is not None and service.accounts.get_user(body.admin.name) is not None:
            # A viewer or installer made on the command line before the setup.
            result.errors.setdefault("admin.name", "a user of this name exists already")
        if result.errors or config is None or body.admin is None:
            raise _refused(result.errors)
        try:
            service.replace_config(config)
        except SourceError as exc:
            raise _refused(
                {"meter": f"the meter cannot start with these settings: {exc}"}
            ) from None
        except SetupError as exc:
            raise _refused({exc.key: str(exc)}) from None
        try:
            user = service.accounts.add_user(body.admin.name, body.admin.password, Role.ADMIN)
        except AccountError as exc:  # a user of that name was added from the command line
            raise _refused({"admin.name": str(exc)}) from None
        return user.name


def _refused(errors: dict[str, str]) -> HTTPException:
    return invalid([f"{field}: {message}" for field, message in errors.items()], errors)
