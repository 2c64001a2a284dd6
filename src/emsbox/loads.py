"""Settings of the meter: the main load, up to 10 extension loads, and where samples come from."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from emsbox.samples import Wiring
from emsbox.serial_settings import SerialParity

MAX_EXTENSION_LOADS = 10
# The main meter's inputs are connected directly, up to Imax 65 A (the datasheet's current
# inputs); a CT is rated to carry 120 % of its primary current (IEC 61869-2 extended rating).
MAIN_MAX_CURRENT_A = 65.0
CT_OVERLOAD = 1.2
# The highest voltage the meter expects, relative to the nominal one (+15 % and a margin).
VOLTAGE_OVERLOAD = 1.2
LoadName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="Name of the load: lower-case letters, digits, '_' and '-'.",
    ),
]


class SourceKind(StrEnum):
    """Where a load's samples (or, for a meter polled over Modbus, values) come from."""

    SIMULATOR = "simulator"
    RECORDING = "recording"
    MODBUS = "modbus"


class ModbusMeterModel(StrEnum):
    """The register map an external meter is read by."""

    SUNSPEC = "sunspec"  # any SunSpec meter: models 201-204 or 211-214
    CARLO_GAVAZZI = "carlo_gavazzi"  # EM24 Ethernet, EM340 and compatible


class ModbusMeterSettings(BaseModel):
    """An external meter polled over Modbus TCP (host) or RTU (serial port)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: ModbusMeterModel = Field(
        default=ModbusMeterModel.SUNSPEC,
        description="The meter's register map: sunspec, or carlo_gavazzi (EM24 / EM340).",
    )
    host: str = Field(
        default="",
        max_length=253,
        description="Host name or address of a Modbus TCP meter (or gateway); empty for RTU.",
    )
    port: int = Field(default=502, ge=1, le=65535, description="Its Modbus TCP port.")
    serial_port: str = Field(
        default="",
        max_length=200,
        description=(
            "Serial port of an RTU meter, e.g. /dev/ttyUSB0; empty for TCP. Meters on one "
            "port share it, with the port's settings of the first of them."
        ),
    )
    baud_rate: int = Field(default=9600, ge=1200, le=115200, description="RTU baud rate.")
    parity: SerialParity = Field(default=SerialParity.NONE, description="RTU parity.")
    stop_bits: int = Field(default=1, ge=1, le=2, description="RTU stop bits.")
    unit_id: int = Field(
        default=1, ge=1, le=247, description="The meter's unit id (slave address)."
    )
    timeout_s: float = Field(
        default=1.0, ge=0.1, le=10.0, description="How long to wait for each answer."
    )
    retries: int = Field(
        default=1, ge=0, le=5, description="Tries again after a timeout or a garbled answer."
    )

    @model_validator(mode="after")
    def _check_transport(self) -> Self:
        """TCP or RTU: a host or a serial port, not both."""
        if self.host and self.serial_port:
            raise ValueError("give host (Modbus TCP) or serial_port (RTU), not both")
        return self


class ExtensionModule(StrEnum):
    """How an extension load's currents are measured (the datasheet's extension modules)."""

    MV333 = "333mV"
    A5 = "5A"


class SourceSettings(BaseModel):
    """A load's source of samples."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: SourceKind = Field(
        default=SourceKind.SIMULATOR,
        description="simulator (the built-in realistic building) or recording (file replay).",
    )
    recording_file: Path | None = Field(
        default=None,
        description=(
            "COMTRADE (.cfg/.cff) or CSV file replayed in real time when kind = recording; "
            "relative paths are in the data directory."
        ),
    )
    loop: bool = Field(default=True, description="Replay the recording in an endless loop.")
    modbus: ModbusMeterSettings = Field(
        default_factory=ModbusMeterSettings,
        description="The external meter, when kind = modbus.",
    )

    @model_validator(mode="after")
    def _check_file(self) -> Self:
        """A recording source names its file; a Modbus one its meter's host or port."""
        if self.kind is SourceKind.RECORDING and self.recording_file is None:
            raise ValueError("recording_file is required when kind = recording")
        if self.kind is SourceKind.MODBUS and not (self.modbus.host or self.modbus.serial_port):
            raise ValueError("modbus.host or modbus.serial_port is required when kind = modbus")
        return self


class MainMeter(BaseModel):
    """The main meter: one three-phase load, or three single-phase loads."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: LoadName = "main"
    wiring: Wiring = Field(default=Wiring.THREE_PHASE_4W, description="Wiring system.")
    as_single_phase_loads: bool = Field(
        default=False,
        description=(
            "Use a 3P4W main meter as three single-phase loads named <name>_l1, <name>_l2 "
            "and <name>_l3 instead of one three-phase load."
        ),
    )
    nominal_voltage_v: float = Field(
        default=230.0, ge=100.0, le=500.0, description="Nominal L-N voltage (120–277 V ±15 %)."
    )
    nominal_frequency_hz: float = Field(
        default=50.0, ge=45.0, le=65.0, description="Nominal frequency: 50 or 60 Hz grids."
    )
    source: SourceSettings = Field(
        default_factory=SourceSettings, description="Where the main meter's samples come from."
    )

    @model_validator(mode="after")
    def _check_split(self) -> Self:
        """Only a 3P4W meter splits into single-phase loads; the main meter measures."""
        if self.as_single_phase_loads and self.wiring is not Wiring.THREE_PHASE_4W:
            raise ValueError("as_single_phase_loads needs wiring 3P4W")
        if self.source.kind is SourceKind.MODBUS:
            raise ValueError("the main meter measures itself: only extension loads can be modbus")
        return self

    def load_names(self) -> list[str]:
        """The names of the loads the main meter gives."""
        if self.as_single_phase_loads:
            return [f"{self.name}_{p}" for p in ("l1", "l2", "l3")]
        return [self.name]


class ExtensionLoad(BaseModel):
    """An extension load: currents through an extension module, voltages of the main meter."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: LoadName
    wiring: Wiring = Field(default=Wiring.THREE_PHASE_4W, description="Wiring system.")
    module: ExtensionModule = Field(
        default=ExtensionModule.MV333, description="Extension module type: 3 × 333 mV or 3 × 5 A."
    )
    ct_primary_a: float = Field(
        default=100.0, gt=0.0, le=10_000.0, description="Primary current of the CTs, in A."
    )
    ct_secondary_a: float = Field(
        default=5.0,
        gt=0.0,
        le=5.0,
        description="Secondary current of 5 A-module CTs (ignored for 333 mV CTs).",
    )
    source: SourceSettings = Field(
        default_factory=SourceSettings, description="Where this load's samples come from."
    )

    @property
    def ct_ratio(self) -> float:
        """Primary over secondary current (333 mV CTs are rated by their primary alone)."""
        if self.module is ExtensionModule.A5:
            return self.ct_primary_a / self.ct_secondary_a
        return self.ct_primary_a


class MeterConfig(BaseModel):
    """The meter: its loads and how often their readings are published."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    main: MainMeter = Field(default_factory=MainMeter, description="The main meter.")
    loads: list[ExtensionLoad] = Field(
        default_factory=list,
        max_length=MAX_EXTENSION_LOADS,
        description=f"Extension loads, at most {MAX_EXTENSION_LOADS}.",
    )
    publish_interval_s: float = Field(
        default=1.0,
        ge=0.2,
        le=1.0,
        description="Seconds between two published readings of a load (one consistent set).",
    )
    simulator_seed: int = Field(
        default=1, ge=0, lt=2**63, description="Seed of the simulator's random processes."
    )

    @model_validator(mode="after")
    def _check_names(self) -> Self:
        """Load names are unique."""
        names = self.load_names()
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"load names must be unique: {', '.join(duplicates)}")
        return self

    def load_names(self) -> list[str]:
        """Every load's name: the main meter's first, then the extension loads'."""
        return [*self.main.load_names(), *(load.name for load in self.loads)]

    def ratings(self) -> list[tuple[str, Wiring, float, float]]:
        """Every load's name, wiring, largest current (A) and largest L-N voltage (V)."""
        v_max = self.main.nominal_voltage_v * VOLTAGE_OVERLOAD
        main_wiring = Wiring.SINGLE_PHASE if self.main.as_single_phase_loads else self.main.wiring
        out = [(n, main_wiring, MAIN_MAX_CURRENT_A, v_max) for n in self.main.load_names()]
        for load in self.loads:
            out.append((load.name, load.wiring, load.ct_primary_a * CT_OVERLOAD, v_max))
        return out
