"""Settings of the digital input and output."""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from emsbox import variables
from emsbox.control.alarms import Condition, Rule
from emsbox.control.inputs import InputFunction
from emsbox.control.tariffs import DAYS, Holiday, Period, TariffCalendar

COUNTERS = frozenset(v.name for v in variables.ENERGY if v.unit == "kWh")


class OutputFunction(StrEnum):
    """What drives the digital output."""

    OFF = "off"
    PULSE = "pulse"
    REMOTE = "remote"
    ALARM = "alarm"


class IoBackend(StrEnum):
    """Where the input and output are."""

    SIMULATED = "simulated"
    GPIO = "gpio"
    MODBUS = "modbus"


class GpioBias(StrEnum):
    """The pull resistor on the GPIO input line."""

    PULL_UP = "pull_up"
    PULL_DOWN = "pull_down"
    AS_IS = "as_is"


class ModbusInputTable(StrEnum):
    """Where a remote I/O module holds the input: discrete inputs (FC 2) or coils (FC 1)."""

    DISCRETE_INPUT = "discrete_input"
    COIL = "coil"


class IoConfig(BaseModel):
    """The digital input and output: where they are and what they do."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    backend: IoBackend = Field(
        default=IoBackend.SIMULATED,
        description=(
            "simulated: an input switched and an output shown in the web app and the API "
            "(for a PC, and for trying the functions out); gpio: two lines of a GPIO chip "
            "(Linux character device); modbus: a remote I/O module over Modbus TCP."
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
            "web app, the API and, when they allow it, MQTT and Modbus; alarm: on while an "
            "alarm that "
            "asks for the output is raised."
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

    gpio_chip: str = Field(
        default="/dev/gpiochip0",
        max_length=100,
        description="gpio: the GPIO chip's character device.",
    )
    gpio_input_line: int = Field(
        default=0, ge=0, le=1023, description="gpio: the input's line offset on the chip."
    )
    gpio_output_line: int = Field(
        default=1, ge=0, le=1023, description="gpio: the output's line offset on the chip."
    )
    gpio_input_bias: GpioBias = Field(
        default=GpioBias.PULL_UP,
        description=(
            "gpio: the input line's pull resistor: pull_up (a contact to ground), pull_down "
            "(a contact to the supply) or as_is (an external resistor)."
        ),
    )
    gpio_input_active_low: bool = Field(
        default=True,
        description=(
            "gpio: a low level is a closed contact (a contact to ground against the pull-up)."
        ),
    )
    gpio_output_active_low: bool = Field(
        default=False,
        description="gpio: a low level closes the output's contact (a relay board driven low).",
    )
    modbus_host: str = Field(
        default="",
        max_length=253,
        description="modbus: the remote I/O module's host name or IP address.",
    )
    modbus_port: int = Field(
        default=502, ge=1, le=65535, description="modbus: the module's Modbus TCP port."
    )
    modbus_unit_id: int = Field(
        default=1, ge=0, le=255, description="modbus: the unit id the module answers to."
    )
    modbus_input_table: ModbusInputTable = Field(
        default=ModbusInputTable.DISCRETE_INPUT,
        description=(
            "modbus: the input is a discrete input (read with FC 2) or a coil (read with FC 1)."
        ),
    )
    modbus_input_address: int = Field(
        default=0, ge=0, le=65535, description="modbus: the input's address (from 0)."
    )
    modbus_output_address: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="modbus: the address of the output's coil (from 0), written with FC 5.",
    )
    modbus_poll_interval_s: float = Field(
        default=0.1,
        ge=0.02,
        le=10.0,
        description="modbus: how often the module's input is read.",
    )

    @field_validator("gpio_chip")
    @classmethod
    def _chip_path(cls, value: str) -> str:
        """A character device under /dev."""
        if not re.fullmatch(r"/dev/[A-Za-z0-9_./-]+", value) or ".." in value:
            raise ValueError("a device path such as /dev/gpiochip0")
        return value

    @model_validator(mode="after")
    def _backend_settings(self) -> Self:
        """What the chosen backend needs (the other backend's settings are kept as they are)."""
        if self.backend is IoBackend.GPIO and self.gpio_input_line == self.gpio_output_line:
            raise ValueError("gpio_input_line and gpio_output_line must be different lines")
        if self.backend is IoBackend.MODBUS:
            if not self.modbus_host.strip():
                raise ValueError("the remote I/O module's host (modbus_host) is needed")
            same = self.modbus_input_address == self.modbus_output_address
            if self.modbus_input_table is ModbusInputTable.COIL and same:
                raise ValueError(
                    "modbus_input_address and modbus_output_address name the same coil"
                )
        return self

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


class Day(StrEnum):
    """A day of the week."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_HOLIDAY = re.compile(r"^(\d{4}-)?\d{2}-\d{2}$")


class TariffPeriod(BaseModel):
    """A time of day on some days of the week, with its tariff."""

    model_config = ConfigDict(extra="forbid")

    days: list[Day] = Field(
        min_length=1, max_length=7, description="Days it starts on: mon, tue, … sun."
    )
    start: str = Field(description="Local time it starts, HH:MM.")
    end: str = Field(
        description=(
            "Local time it ends, HH:MM; not after the start: it runs over midnight "
            "(00:00: until midnight; equal to the start: the whole day)."
        )
    )
    tariff: int = Field(ge=1, le=2, description="The tariff during the period: 1 or 2.")

    @field_validator("start", "end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        """HH:MM, 00:00 to 23:59."""
        if not _TIME.match(value):
            raise ValueError("a time of day as HH:MM, 00:00 to 23:59")
        return value


def _weekday_days() -> list[TariffPeriod]:
    weekdays = [Day.MON, Day.TUE, Day.WED, Day.THU, Day.FRI]
    return [TariffPeriod(days=weekdays, start="08:00", end="19:00", tariff=1)]


class TariffsConfig(BaseModel):
    """Tariff 1 or 2 by a weekly calendar in the site's time zone, with holidays."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    calendar: bool = Field(
        default=False,
        description=(
            "Follow the calendar below (off: the tariff changes only by command or the "
            "digital input)."
        ),
    )
    periods: list[TariffPeriod] = Field(
        default_factory=_weekday_days,
        max_length=32,
        description=(
            "The periods of the week, in the site's local time (DST included); by default "
            "weekdays 08:00–19:00 in tariff 1."
        ),
    )
    default_tariff: int = Field(
        default=2, ge=1, le=2, description="The tariff outside every period: 1 or 2."
    )
    holidays: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Holidays: YYYY-MM-DD for one date, MM-DD for the same day every year.",
    )
    holiday_tariff: int = Field(
        default=2, ge=1, le=2, description="The tariff all day on a holiday: 1 or 2."
    )

    @field_validator("holidays")
    @classmethod
    def _dates(cls, values: list[str]) -> list[str]:
        """Real dates (29 February allowed every year)."""
        for value in values:
            ok = bool(_HOLIDAY.match(value))
            if ok:
                parts = [int(p) for p in value.split("-")]
                year, month, day = parts if len(parts) == 3 else [2000, *parts]
                try:
                    dt.date(year, month, day)
                except ValueError:
                    ok = False
            if not ok:
                raise ValueError(f"{value!r} is not a date as YYYY-MM-DD or MM-DD")
        return values

    def calendar_in(self, zone: ZoneInfo) -> TariffCalendar:
        """The calendar these settings describe, in ``zone``."""
        periods = [
            Period(
                frozenset(DAYS.index(d.value) for d in p.days),
                dt.time.fromisoformat(p.start),
                dt.time.fromisoformat(p.end),
                p.tariff,
            )
            for p in self.periods
        ]
        holidays = []
        for value in self.holidays:
            parts = [int(x) for x in value.split("-")]
            holidays.append(
                Holiday(parts[1], parts[2], parts[0]) if len(parts) == 3 else Holiday(*parts)
            )
        return TariffCalendar(zone, periods, holidays, self.default_tariff, self.holiday_tariff)


_ALARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,59}$")
NUMERIC = frozenset(v.name for v in variables.ALL if v.kind is not variables.Kind.STATE)


class AlarmRuleConfig(BaseModel):
    """An alarm on one variable of one load."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(description="A name for it, unique (letters, digits, space, _ . -).")
    load: str = Field(default="", max_length=40, description="The load; empty: the main meter's.")
    variable: str = Field(description="The variable watched, e.g. v_ln_sys, p_sys, thd_i_l1.")
    condition: Condition = Field(
        description="above the high threshold, below the low one, or outside the band."
    )
    low: float | None = Field(default=None, description="Low threshold (below, outside).")
    high: float | None = Field(default=None, description="High threshold (above, outside).")
    hysteresis: float = Field(
        default=0.0,
        ge=0.0,
        description="Once raised, the value must come back past the threshold by this much.",
    )
    on_delay_s: float = Field(
        default=0.0, ge=0.0, le=86_400.0, description="How long the condition must hold first."
    )
    off_delay_s: float = Field(
        default=0.0, ge=0.0, le=86_400.0, description="How long it must be gone to clear."
    )
    latching: bool = Field(
        default=False, description="Stay raised until acknowledged, even once the value is back."
    )
    output: bool = Field(
        default=False,
        description="Switch the digital output on while raised (when its function is alarm).",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        """Letters, digits, space, '_', '.' and '-'; up to 60."""
        if not _ALARM_NAME.match(value):
            raise ValueError("letters, digits, spaces, '_', '.' and '-', up to 60")
        return value

    @field_validator("variable")
    @classmethod
    def _variable(cls, value: str) -> str:
        """A numeric variable of the vocabulary."""
        if value not in NUMERIC:
            raise ValueError(f"{value!r} is not a measured or counted variable")
        return value

    @model_validator(mode="after")
    def _thresholds(self) -> Self:
        """The thresholds the condition needs, in order."""
        self.rule()
        return self

    def rule(self) -> Rule:
        """The state machine's rule; ValueError when the thresholds do not fit."""
        return Rule(
            self.condition,
            self.low,
            self.high,
            self.hysteresis,
            self.on_delay_s,
            self.off_delay_s,
            self.latching,
        )


def _voltage_band() -> list[AlarmRuleConfig]:
    # EN 50160: the supply voltage within ±10 % of 230 V.
    return [
        AlarmRuleConfig(
            name="Supply voltage out of range",
            variable="v_ln_sys",
            condition=Condition.OUTSIDE,
            low=207.0,
            high=253.0,
            hysteresis=2.0,
            on_delay_s=10.0,
            off_delay_s=10.0,
        )
    ]


class AlarmsConfig(BaseModel):
    """Alarms on measured values."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rules: list[AlarmRuleConfig] = Field(
        default_factory=_voltage_band,
        max_length=64,
        description=(
            "The alarms; by default the supply voltage outside 207–253 V (230 V ± 10 %, "
            "EN 50160) for 10 s."
        ),
    )
    system: bool = Field(
        default=True,
        description=(
            "Raise the built-in alarms for the system itself: a load's source not answering, "
            "the store failing, storage almost full, the clock set by a jump, the digital I/O "
            "hardware not working, e-mail not delivered, the MQTT outbox full."
        ),
    )
    system_output: bool = Field(
        default=False,
        description="The built-in alarms also switch the digital output (function alarm).",
    )

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[AlarmRuleConfig]) -> list[AlarmRuleConfig]:
        """Names are unique."""
        names = [r.name for r in rules]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"alarm names must be unique: {', '.join(doubled)}")
        return rules
