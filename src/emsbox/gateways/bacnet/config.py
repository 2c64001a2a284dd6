"""Settings of the BACnet/IP gateway."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from emsbox.gateways.bacnet.identifiers import MAX_INSTANCE
from emsbox.variables import ALL, BY_NAME

# The units a covIncrement may be set for (the vocabulary's, "" being the power factor's).
COV_UNITS = frozenset(v.unit for v in ALL if v.unit)
PF_UNIT_KEY = "PF"  # the power factor has no unit symbol: its key in cov_increments


def parse_host_port(value: str, default_port: int) -> tuple[str, int]:
    """``host`` or ``host:port`` (IPv4 or a name) as (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r}: the port must be 1…65535")
    return host, int(port)


class CovIncrement(BaseModel):
    """The COV increment of a variable, or of every variable of a unit."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    applies_to: str = Field(description="A variable (p_sys) or a unit (W, V, PF, kWh, …).")
    increment: float = Field(gt=0.0, description="The change that sends a COV notification.")

    @field_validator("applies_to")
    @classmethod
    def _known(cls, value: str) -> str:
        """A variable of the vocabulary or one of its units."""
        if value not in BY_NAME and value not in COV_UNITS and value != PF_UNIT_KEY:
            raise ValueError(f"{value!r} is neither a variable nor a unit")
        return value


class BacnetConfig(BaseModel):
    """The BACnet/IP gateway: the meter as a BACnet device (ASHRAE 135 Annex J, UDP)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(default=False, description="Serve BACnet/IP (off by default).")
    bind_address: str = Field(
        default="0.0.0.0",
        description=(
            "Address the BACnet/IP device listens on. 0.0.0.0: every IPv4 interface, "
            "broadcasts included. One interface's address: only that interface; broadcasts "
            "(Who-Is to the subnet) are heard only when broadcast_address is set, on a second, "
            "receive-only socket bound to it."
        ),
    )
    port: int = Field(
        default=47808,
        ge=0,
        le=65535,
        description="UDP port (47808 = 0xBAC0 is BACnet/IP's; 0: any free port).",
    )
    broadcast_address: str = Field(
        default="",
        description=(
            "The subnet's broadcast address, e.g. 192.168.1.255: the device broadcasts its "
            "I-Am there (at start, when its instance or name changes, in answer to broadcast "
            "Who-Is) and, bound to one interface's address, also listens on it. Empty: no "
            "local broadcasts, Who-Is is answered to the asker only (through the BBMD when "
            "one is set), and a device bound to one address hears no broadcast Who-Is."
        ),
    )
    device_instance: int | None = Field(
        default=None,
        ge=0,
        le=MAX_INSTANCE,
        description=(
            "The device object's instance, unique on the BACnet internetwork (0…4194302); "
            "empty: derived from the device's serial number (stable across restarts)."
        ),
    )
    device_name: str = Field(
        default="",
        max_length=150,
        description="The device object's name, unique on the internetwork; empty: emsbox-<serial>.",
    )
    location: str = Field(default="", max_length=150, description="The device's location.")
    description: str = Field(default="", max_length=150, description="The device's description.")
    bbmd_address: str = Field(
        default="",
        max_length=200,
        description=(
            "Register as a foreign device with this BBMD (host or host:port, port 47808 by "
            "default), to be found from other subnets; empty: no registration."
        ),
    )
    bbmd_ttl_s: int = Field(
        default=300,
        ge=30,
        le=65535,
        description="Time-to-live of the foreign-device registration; renewed at half of it.",
    )
    output_commandable: bool = Field(
        default=False,
        description=(
            "Let BACnet clients command the digital output (binary-output 0, with a priority "
            "array) when its function is remote; off: it is read-only."
        ),
    )
    dcc_password: SecretStr = Field(
        default=SecretStr(""),
        max_length=20,
        description=(
            "Password of DeviceCommunicationControl (up to 20 characters); empty: it and "
            "ReinitializeDevice are always refused."
        ),
    )
    cov_increments: list[CovIncrement] = Field(
        default_factory=list,
        max_length=100,
        description=(
            "COV increments that replace the defaults, each for a variable (p_sys) or a unit "
            "(V, A, W, var, VA, PF, Hz, %, kWh, kvarh, kVAh, h); a variable's beats its unit's."
        ),
    )

    def cov_increment_map(self) -> dict[str, float]:
        """The overrides by variable name or unit key."""
        return {c.applies_to: c.increment for c in self.cov_increments}

    @field_validator("bind_address", "broadcast_address")
    @classmethod
    def _check_ipv4(cls, value: str, info: ValidationInfo) -> str:
        """An IPv4 address (BACnet/IP is IPv4: Annex J); the broadcast address may be empty."""
        if value or info.field_name == "bind_address":
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IPv4 address") from None
        return value

    @field_validator("bbmd_address")
    @classmethod
    def _check_bbmd(cls, value: str) -> str:
        """Empty, or host[:port]."""
        if value:
            host, _ = parse_host_port(value, 47808)
            if not host or any(c.isspace() for c in host):
                raise ValueError(f"{value!r} is not host or host:port")
        return value

    @field_validator("cov_increments")
    @classmethod
    def _one_each(cls, value: list[CovIncrement]) -> list[CovIncrement]:
        """Each variable or unit once."""
        keys = [c.applies_to for c in value]
        doubled = sorted({k for k in keys if keys.count(k) > 1})
        if doubled:
            raise ValueError(f"one increment each: {', '.join(doubled)}")
        return value
