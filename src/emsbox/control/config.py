"""Settings of the digital input and output."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from emsbox import variables
from emsbox.control.inputs import InputFunction

COUNTERS = frozenset(v.name for v in variables.ENERGY if v.unit == "kWh")


class OutputFunction(StrEnum):
    """What drives the digital output."""

    OFF = "off"
    PULSE = "pulse"
    REMOTE = "remote"


class IoBackend(StrEnum):
    """Where the input and output are."""

    SIMULATED = "simulated"


class IoConfig(BaseModel):
    """The digital input and output: where they are and what they do."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    backend: IoBackend = Field(
        default=IoBackend.SIMULATED,
        description=(
            "simulated: an input switched and an output shown in the web app and the API "
            "(for a PC, and for trying the functions out)."
        ),
    )
    input_function: InputFunction = Field(
        default=InputFunction.STATUS,
        description=(
            "status: shown and logged; tariff: active selects tariff 2, inactive tariff 1; "
            "partial_run: active starts the partial counters, inactive stops them; "
            "partial_reset: closing resets the partial counters."
        ),
    )
    input_load: str = Field(
        default="",
        max_length=40,
        description=(
            "The load whose counters the input acts on; empty: the main meter's (its first "
            "phase when it is used as three single-phase loads)."
        ),
    )
    input_inverted: bool = Field(
        default=False,
        description="Take a closed contact as inactive (for a normally closed contact).",
    )
    input_debounce_s: float = Field(
        default=0.05,
        ge=0.0,
        le=10.0,
        description="A change of the input counts once it has held this long (contact bounce).",
    )
    output_function: OutputFunction = Field(
        default=OutputFunction.OFF,
        description=(
            "off; pulse: pulses proportional to an energy counter; remote: switched from the "
            "web app, the API and, when they allow it, MQTT."
        ),
    )
    output_normally_closed: bool = Field(
        default=False,
        description="The contact is closed at rest and opens when the output is on.",
    )
    pulse_load: str = Field(
        default="",
        max_length=40,
        description=(
            "The load whose energy the pulses count; empty: the main meter's (its first "
            "phase when it is used as three single-phase loads)."
        ),
    )
    pulse_counter: str = Field(
        default="kwh_imp",
        description="The energy counter (kWh) the pulses count, e.g. kwh_imp or kwh_exp.",
    )
    pulses_per_kwh: float = Field(
        default=1000.0, gt=0.0, le=100_000.0, description="Pulses per kWh (the constant)."
    )
    pulse_width_s: float = Field(
        default=0.1,
        ge=0.03,
        le=10.0,
        description=(
            "How long each pulse lasts (at least 30 ms, as S0 inputs need); the pause after "
            "it is as long."
        ),
    )

    @field_validator("pulse_counter")
    @classmethod
    def _energy_counter(cls, value: str) -> str:
        """A counter of active energy in kWh."""
        if value not in COUNTERS:
            raise ValueError(f"not an active energy counter; one of {', '.join(sorted(COUNTERS))}")
        return value

    @field_validator("input_load", "pulse_load")
    @classmethod
    def _load_name(cls, value: str) -> str:
        """Empty, or a load name."""
        if value and not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
            raise ValueError("a load name: lower-case letters, digits, '_' and '-'")
        return value

    def max_pulse_power_kw(self) -> float:
        """The highest power whose pulses keep pace (one pulse per width plus pause)."""
        return 3600.0 / (self.pulses_per_kwh * 2.0 * self.pulse_width_s)
