"""The configuration: read (secrets redacted), validate and replace, and its JSON schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, status
from pydantic import BaseModel, Field

from emsbox.config import Config, ConfigError, restore_secrets, to_data, validate
from emsbox.web.accounts import Role
from emsbox.web.api.deps import Installer, ServiceDep

router = APIRouter(prefix="/config", tags=["configuration"])

# Sections that touch security (ports, certificates, sessions) only an admin may change.
ADMIN_SECTIONS = ("web",)


class ConfigSaved(BaseModel):
    """The result of replacing the configuration."""

    saved: bool
    restart_required: bool = Field(
        description="Whether the service must be restarted for the change to take effect."
    )
    config: dict[str, Any]


@router.get("", summary="The configuration")
async def get_config(service: ServiceDep, _: Installer) -> dict[str, Any]:
    """The whole configuration, secrets redacted."""
    return to_data(service.config, redact=True)


@router.get("/schema", summary="JSON schema of the configuration")
async def get_schema(_: Installer) -> dict[str, Any]:
    """Every setting with its type, default and description (the settings pages use it)."""
    return Config.model_json_schema()


@router.put("", response_model=ConfigSaved, summary="Replace the configuration")
async def put_config(
    service: ServiceDep, who: Installer, body: Annotated[dict[str, Any], Body()]
) -> ConfigSaved:
    """Validate and save a whole configuration; invalid ones are refused, nothing changes."""
    data = restore_secrets(body, service.config)
    try:
        new = validate(data, "configuration")
    except ConfigError as exc:
        raise HTTPException(422, exc.problems) from None
    for section in ADMIN_SECTIONS:
        changed = getattr(new, section) != getattr(service.config, section)
        if changed and not who.role.allows(Role.ADMIN):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"changing {section} settings needs the admin role"
            )
    restart = service.replace_config(new)
    return ConfigSaved(saved=True, restart_required=restart, config=to_data(new, redact=True))
