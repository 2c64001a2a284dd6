"""The configuration: read (secrets redacted), validate and replace, and its JSON schema."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Body, HTTPException, status
from pydantic import BaseModel, Field

from emsbox.config import Config, ConfigError, restore_secrets, to_data, validate
from emsbox.gateways.errors import SetupError
from emsbox.loads import SourceKind
from emsbox.sources.base import SourceError
from emsbox.web.accounts import Role
from emsbox.web.api.deps import Installer, ServiceDep

router = APIRouter(prefix="/config", tags=["configuration"])

# Sections that touch the web server's security (ports, certificates, sessions) only an admin
# may change.
ADMIN_SECTIONS = ("web",)


class ConfigSaved(BaseModel):
    """The result of replacing the configuration."""

    saved: bool
    restart_required: bool = Field(
        description="Whether the service must be restarted for the change to take effect."
    )
    config: dict[str, Any]


def invalid(problems: list[str], errors: dict[str, str] | None = None) -> HTTPException:
    """422 in the shape of every validation error: one message, the problems one by one,
    and ``errors``, the same by field for forms (by default read from the problems)."""
    detail: dict[str, Any] = {
        "message": "; ".join(problems),
        "problems": problems,
        "errors": by_field(problems) if errors is None else errors,
    }
    return HTTPException(422, detail)


def by_field(problems: list[str]) -> dict[str, str]:
    """The problems (``key.path: reason``) by key path, for forms; the first one per path.

    A model-level problem that names the model's own fields (``mqtt: host: the broker's host
    is needed; tls: AWS IoT Core needs TLS``) is given to each field it names.
    """
    errors: dict[str, str] = {}
    for problem in problems:
        key, sep, reason = problem.partition(": ")
        if not sep:
            errors.setdefault("(top level)", problem)
            continue
        for field, why in _by_named_field(key, reason):
            errors.setdefault(field, why)
    return errors


def _by_named_field(key: str, reason: str) -> list[tuple[str, str]]:
    """``reason`` split into ``field[, field]: why`` parts of the model at ``key``, if it is
    made of such parts only; else the whole of it at ``key``."""
    model = _model_at(key)
    if model is None:
        return [(key, reason)]
    split = []
    for part in reason.split("; "):
        names, sep, why = part.partition(": ")
        fields = names.split(", ")
        if not sep or not all(name in model.model_fields for name in fields):
            return [(key, reason)]
        split += [(f"{key}.{name}", why) for name in fields]
    return split


def _model_at(key: str) -> type[BaseModel] | None:
    """The settings model at a key path of the configuration (``meter.loads[0]``), if any."""
    model: type[BaseModel] = Config
    for part in re.findall(r"[^.\[\]]+", key):
        if part.isdigit():
            continue  # a list's item: the list's model
        field = model.model_fields.get(part)
        inner = None if field is None else _model_in(field.annotation)
        if inner is None:
            return None
        model = inner
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds (``X``, ``list[X]``, ``X | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def recording_problems(config: Config, data_dir: Path) -> list[str]:
    """Recording files that would stop the next start: missing, or outside the data dir."""
    problems = []
    sources = [("meter.main.source", config.meter.main.source)]
    sources += [(f"meter.loads[{i}].source", x.source) for i, x in enumerate(config.meter.loads)]
    root = data_dir.resolve()
    for key, source in sources:
        if source.kind is not SourceKind.RECORDING or source.recording_file is None:
            continue
        path = (data_dir / source.recording_file).resolve()
        if not path.is_relative_to(root):
            problems.append(f"{key}.recording_file: must be inside the data directory")
        elif not path.is_file():
            problems.append(f"{key}.recording_file: file not found in the data directory")
    return problems


@router.get("", summary="The configuration")
async def get_config(service: ServiceDep, _: Installer) -> dict[str, Any]:
    """The saved configuration (the one the next start uses), secrets redacted."""
    return to_data(service.saved_config, redact=True)


@router.get("/schema", summary="JSON schema of the configuration")
async def get_schema(_: Installer) -> dict[str, Any]:
    """Every setting with its type, default and description (the settings pages use it)."""
    return Config.model_json_schema()


@router.put("", response_model=ConfigSaved, summary="Replace the configuration")
async def put_config(
    service: ServiceDep, who: Installer, body: Annotated[dict[str, Any], Body()]
) -> ConfigSaved:
    """Validate and save a whole configuration; invalid ones are refused, nothing changes."""
    data = restore_secrets(body, service.saved_config)
    try:
        new = validate(data, "configuration")
    except ConfigError as exc:
        raise invalid(exc.problems) from None
    problems = recording_problems(new, service.data_dir)
    if problems:
        raise invalid(problems)
    for section in ADMIN_SECTIONS:
        changed = getattr(new, section) != getattr(service.saved_config, section)
        if changed and not who.role.allows(Role.ADMIN):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"changing {section} settings needs the admin role"
            )
    try:
        restart = await asyncio.to_thread(service.replace_config, new)
    except SourceError as exc:
        raise invalid([f"meter: the new sources cannot run: {exc}"]) from None
    except SetupError as exc:
        raise invalid([f"{exc.key}: {exc}"]) from None
    return ConfigSaved(saved=True, restart_required=restart, config=to_data(new, redact=True))
