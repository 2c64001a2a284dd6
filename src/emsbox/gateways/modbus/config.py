"""Settings of the Modbus gateway."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator

from emsbox.gateways.modbus.sunspec_models import SunSpecModels


class ModbusConfig(BaseModel):
    """The Modbus gateway: a Modbus TCP server with the SunSpec and native register maps."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    tcp_enabled: bool = Field(default=False, description="Serve Modbus TCP (off by default).")
    bind_address: str = Field(
        default="0.0.0.0",
        description="Address the Modbus TCP server listens on (0.0.0.0: every IPv4 interface).",
    )
    tcp_port: int = Field(
        default=502,
        ge=0,
        le=65535,
        description=(
            "Modbus TCP port (502 is the standard one and needs root or CAP_NET_BIND_SERVICE; "
            "0: any free port)."
        ),
    )
    sunspec_models: SunSpecModels = Field(
        default=SunSpecModels.FLOAT,
        description=(
            "SunSpec meter models: float (211–214, float32 values) or int (201–204, integers "
            "with scale factors) for clients that only read those."
        ),
    )
    max_connections: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Most clients connected at once; a further one is closed at once.",
    )
    idle_timeout_s: float = Field(
        default=60.0,
        ge=1.0,
        le=86_400.0,
        description=(
            "A connection that sends nothing this long is closed, so that clients that "
            "vanished (half-open connections) do not hold a place."
        ),
    )

    @field_validator("bind_address")
    @classmethod
    def _check_address(cls, value: str) -> str:
        """An IPv4 or IPv6 address."""
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        return value
