"""Settings of the web server: addresses, ports, TLS and sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class WebConfig(BaseModel):
    """The web server (REST API and web app): HTTPS by default."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    bind_address: str = Field(
        default="0.0.0.0",
        description="Address the web server listens on (0.0.0.0: every IPv4 interface).",
    )
    https_port: int = Field(
        default=8443,
        ge=0,
        le=65535,
        description="HTTPS port (443 on a dedicated device; 0: any free port).",
    )
    http_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Plain HTTP port that only redirects to HTTPS (80 on a dedicated device).",
    )
    http_redirect: bool = Field(
        default=True, description="Listen on http_port and redirect every request to HTTPS."
    )
    certificate_file: Path | None = Field(
        default=None,
        description=(
            "PEM certificate (chain) to serve instead of the device's self-signed one; "
            "relative paths are in the data directory."
        ),
    )
    key_file: Path | None = Field(default=None, description="PEM private key of certificate_file.")
    plain_http_localhost: bool = Field(
        default=False,
        description=(
            "Serve plain HTTP on 127.0.0.1:https_port instead of HTTPS, for use behind a "
            "reverse proxy that terminates TLS. The bind address is then ignored."
        ),
    )
    session_hours: float = Field(
        default=12.0, gt=0.0, le=24.0 * 30, description="Lifetime of a web login session."
    )

    @model_validator(mode="after")
    def _check_tls_pair(self) -> Self:
        """A user certificate comes with its key."""
        if (self.certificate_file is None) != (self.key_file is None):
            raise ValueError("certificate_file and key_file must be given together")
        return self
