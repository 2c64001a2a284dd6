"""The whole configuration: one TOML file in the data directory, typed by pydantic models.

Each part of the program owns the model of its own settings (``emsbox.loads``,
``emsbox.store.config``, ``emsbox.web.config``); this module composes them, reads and writes
the file, applies ``--set key=value`` overrides and turns validation errors into one line per
problem naming the exact key path. A file is only ever replaced atomically, and the previous
valid file is kept beside it as ``config.toml.bak``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli_w
from platformdirs import user_data_dir
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from emsbox.control.config import AlarmsConfig, IoConfig, TariffsConfig
from emsbox.control.inputs import InputFunction
from emsbox.gateways.bacnet.config import BacnetConfig
from emsbox.gateways.email.config import EmailConfig
from emsbox.gateways.modbus.config import ModbusConfig
from emsbox.gateways.mqtt.config import MqttConfig
from emsbox.languages import Language
from emsbox.loads import MeterConfig
from emsbox.private_files import fsync_dir
from emsbox.store.config import StoreConfig
from emsbox.web.config import WebConfig

CONFIG_FILE = "config.toml"
REDACTED = "********"


class ConfigError(Exception):
    """The configuration is refused; ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


class SiteConfig(BaseModel):
    """The site: its name and local time."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(
        default="emsbox", min_length=1, max_length=100, description="Name of the site."
    )
    timezone: str = Field(
        default="UTC",
        max_length=64,
        description="IANA time zone of the site (e.g. Europe/Rome): days, weeks and months "
        "of energy reports follow it, daylight saving time included.",
    )

    language: Language = Field(
        default="en",
        description="Language of the web app for users who have not chosen one, and of its "
        "login page: en (English) or it (Italiano).",
    )

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        """One line of text: it heads pages, reports and e-mail subjects."""
        if any(not c.isprintable() for c in value):
            raise ValueError("the name must be one line of text, without control characters")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """The time zone must be one the system (or the tzdata package) knows."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            # OSError: a directory of the zone database ("Europe") or a name too long.
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def zone(self) -> ZoneInfo:
        """The site's time zone."""
        return ZoneInfo(self.timezone)


class Config(BaseModel):
    """Everything emsbox is configured with."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    site: SiteConfig = Field(default_factory=SiteConfig, description="The site.")
    meter: MeterConfig = Field(default_factory=MeterConfig, description="Loads and sources.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="The data logger.")
    web: WebConfig = Field(default_factory=WebConfig, description="The web server.")
    modbus: ModbusConfig = Field(default_factory=ModbusConfig, description="The Modbus gateway.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="The MQTT gateway.")
    bacnet: BacnetConfig = Field(default_factory=BacnetConfig, description="The BACnet/IP gateway.")
    io: IoConfig = Field(default_factory=IoConfig, description="The digital input and output.")
    tariffs: TariffsConfig = Field(
        default_factory=TariffsConfig, description="Tariffs by calendar."
    )
    alarms: AlarmsConfig = Field(
        default_factory=AlarmsConfig, description="Alarms on measured values."
    )
    email: EmailConfig = Field(default_factory=EmailConfig, description="E-mail notifications.")

    @model_validator(mode="after")
    def _io_loads(self) -> Self:
        """The digital input and the pulse output act on loads that exist; the tariff has one
        master."""
        names = self.meter.load_names()
        named: list[tuple[tuple[str | int, ...], str]] = [
            (("io", key), getattr(self.io, key)) for key in ("input_load", "pulse_load")
        ]
        named += [(("alarms", "rules", i, "load"), r.load) for i, r in enumerate(self.alarms.rules)]
        wrong = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "unknown_load",
                    "no load named {load}; loads: {names}",
                    {"load": repr(load), "names": ", ".join(names)},
                ),
                loc=loc,
                input=load,
            )
            for loc, load in named
            if load and load not in names
        ]
        if self.tariffs.calendar and self.io.input_function is InputFunction.TARIFF:
            both = "the tariff follows either the calendar or the digital input, not both"
            wrong.append(
                InitErrorDetails(
                    type=PydanticCustomError("tariff_twice", both),
                    loc=("tariffs", "calendar"),
                    input=True,
                )
            )
        if wrong:
            # Reported at the fields' own paths (io.input_load), for the settings form.
            raise ValidationError.from_exception_data(type(self).__name__, wrong)
        return self


def default_data_dir() -> Path:
    """The per-user data directory (e.g. ``~/.local/share/emsbox``)."""
    return Path(user_data_dir("emsbox", appauthor=False))


def key_path(loc: Iterable[int | str]) -> str:
    """A pydantic error location as a key path: ``meter.loads[2].wiring``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def problems_of(error: ValidationError) -> list[str]:
    """One line per problem: ``key.path: reason``."""
    lines = []
    for item in error.errors(include_url=False):
        # Model-level validators report the model's own path; the message names the fields.
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{key_path(item['loc'])}: {message}")
    return lines


def validate(data: Mapping[str, Any], source: str = "configuration") -> Config:
    """A Config from plain data; ConfigError with every problem otherwise."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_of(exc)) from None


def read_file(path: Path) -> dict[str, Any]:
    """The TOML data of ``path``; ConfigError when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read: {exc}"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None


def load_file(path: Path, overrides: Sequence[str] = ()) -> Config:
    """The configuration in ``path`` with ``--set`` overrides applied, validated."""
    data = read_file(path)
    apply_overrides(data, overrides)
    return validate(data, str(path))


def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML value (number, boolean, string, array, inline table) or text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> None:
    """Apply ``key.path=value`` overrides to ``data`` in place (``loads.0.name`` indexes lists)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", [f"{item!r} is not key=value"])
        parts = key.strip().split(".")
        node: Any = data
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError("--set", [f"{where}: no such list item"])
                if last:
                    node[int(part)] = parse_value(raw)
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = parse_value(raw)
                else:
                    node = node.setdefault(part, {})
            else:
                raise ConfigError("--set", [f"{where}: {parts[depth - 1]} is not a section"])


def to_data(config: Config, redact: bool = False) -> dict[str, Any]:
    """The configuration as plain data (TOML-ready: no None values); secrets that are set
    shown as ``REDACTED`` if asked."""
    data = config.model_dump(mode="python", exclude_none=True)
    plain: dict[str, Any] = _plain(data, config, redact)
    return plain


def _plain(value: Any, model: Any, redact: bool) -> Any:
    if isinstance(value, dict):
        return {
            k: _plain(v, getattr(model, k, None) if model is not None else None, redact)
            for k, v in value.items()
        }
    if isinstance(value, list):
        items = model if isinstance(model, list) else [None] * len(value)
        return [_plain(v, m, redact) for v, m in zip(value, items, strict=True)]
    if isinstance(value, SecretStr):
        # An empty secret hides nothing: shown empty, a form can tell that none is set.
        secret = value.get_secret_value()
        return REDACTED if redact and secret else secret
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "value") and isinstance(value.value, str | int | float):
        return value.value  # enums
    return value


def restore_secrets(data: dict[str, Any], current: Config) -> dict[str, Any]:
    """Put the current secrets back where ``data`` (from a client) holds the redaction mark."""
    restored: dict[str, Any] = _restore(data, to_data(current))
    return restored


def _restore(value: Any, current: Any) -> Any:
    if value == REDACTED and isinstance(current, str):
        return current
    if isinstance(value, dict) and isinstance(current, dict):
        return {k: _restore(v, current.get(k)) for k, v in value.items()}
    if isinstance(value, list) and isinstance(current, list):
        return [_restore(v, c) for v, c in zip(value, current, strict=False)] + value[
            len(current) :
        ]
    return value


def save_file(config: Config, path: Path) -> None:
    """Write ``config`` to ``path`` atomically; the previous file is kept as ``.bak``.

    The file may hold secrets, so it is created readable by its owner only.
    """
    text = "# emsbox configuration: see docs/configuration.md for every setting.\n"
    text += tomli_w.dumps(to_data(config))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if path.exists():
        os.replace(path, path.with_name(path.name + ".bak"))
    os.replace(tmp, path)
    fsync_dir(path.parent)
