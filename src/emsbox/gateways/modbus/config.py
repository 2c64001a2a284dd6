"""Settings of the Modbus gateway."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator

from emsbox.gateways.modbus.sunspec_models import SunSpecModels
from emsbox.serial_settings import SerialParity

BAUD_RATES = (2400, 4800, 9600, 19200, 38400, 57600, 115200)
# Loads answer on consecutive slave addresses from rtu_unit_id; 247 is the highest one.
MAX_SLAVE_ADDRESS = 247
MAX_UNITS = 13  # a main meter split in three, and ten extension loads


class ModbusConfig(BaseModel):
    """The Modbus gateway: a Modbus TCP server and an RTU slave, with the SunSpec and native
    register maps."""

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

    writes_enabled: bool = Field(
        default=False,
        description=(
            "Accept writes to the command registers: start, stop and reset the partial "
            "counters, select the tariff (each write is logged). Off: every write is refused."
        ),
    )
    rtu_enabled: bool = Field(
        default=False, description="Answer as a Modbus RTU slave on a serial port (off by default)."
    )
    rtu_serial_port: str = Field(
        default="/dev/ttyUSB0",
        min_length=1,
        max_length=200,
        description="The serial port of the RS485 line, e.g. /dev/ttyUSB0 or /dev/ttyAMA0.",
    )
    rtu_baud_rate: int = Field(
        default=9600, description=f"Baud rate: {', '.join(map(str, BAUD_RATES))}."
    )
    rtu_data_bits: int = Field(
        default=8,
        ge=7,
        le=8,
        description="Data bits: 8 (as Modbus RTU needs) or 7 for lines set up that way.",
    )
    rtu_parity: SerialParity = Field(
        default=SerialParity.EVEN, description="Parity: even (the Modbus default), odd or none."
    )
    rtu_stop_bits: int = Field(
        default=1, ge=1, le=2, description="Stop bits: 1, or 2 (usual with no parity)."
    )
    rtu_unit_id: int = Field(
        default=1,
        ge=1,
        le=MAX_SLAVE_ADDRESS - MAX_UNITS + 1,
        description=(
            "Slave address of the first load; the others follow on the next addresses. "
            "Requests to other addresses are left to the other devices on the line."
        ),
    )

    @field_validator("rtu_baud_rate")
    @classmethod
    def _check_baud_rate(cls, value: int) -> int:
        """One of the usual baud rates."""
        if value not in BAUD_RATES:
            raise ValueError(f"must be one of {', '.join(map(str, BAUD_RATES))}")
        return value

    @field_validator("bind_address")
    @classmethod
    def _check_address(cls, value: str) -> str:
        """An IPv4 or IPv6 address."""
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        return value
