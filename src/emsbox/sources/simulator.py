"""A realistic simulator of a site's voltage and current waveforms: the embedded default source.

Every load is modelled as a grid voltage (nominal level, slow wander, unbalance, harmonics)
feeding a consumer whose power follows a daily profile (night base, morning and evening
peaks, appliances switching on and off, slow fluctuations) minus an optional PV-like midday
generation with passing clouds. The current's fundamental carries the net active power and
the consumption's reactive power; its harmonics follow the consumption.

How it stays fast and reproducible:

- Samples are rendered in fixed frames aligned to the first sample, and ``read`` only
  slices them, so the concatenated output never depends on the block sizes asked for.
- Randomness is either a pure function of (seed, stream, slot index) (a splitmix64 hash, for
  the slow processes) or drawn in frame order from seeded generators (for the noise), so a
  seed and a start time give bit-identical samples.
- Loads with the same nominal frequency share one grid: one frequency (a smooth random
  wander around the nominal, continuous and piecewise linear at 10 ms) whose phase is
  summed sample by sample and carried over from frame to frame, so it never jumps.
- Slow quantities (power, reactive power, voltage level) are evaluated once per 10 ms step
  and held; amplitude steps never touch the phase. Every channel is linear in them, so in
  each step a channel is a fixed combination of cos hθ and sin hθ of the grid phase θ: the
  whole frame is one batch of small matrix products (numpy, no per-sample Python).
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Annotated, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from emsbox.samples import (
    OPTIONAL_SIGNALS,
    REQUIRED_SIGNALS,
    ChannelId,
    FloatArray,
    LoadInfo,
    SampleBlock,
    Wiring,
)

IntArray = npt.NDArray[np.int64]

SQRT2 = math.sqrt(2.0)
SQRT3 = math.sqrt(3.0)
TWO_PI = 2.0 * math.pi

# Slow quantities (power, reactive power, voltage level) are evaluated once per step this
# long and held in between.
STEP_S = 0.01
# Steps per rendered frame (a frame is 2 s at the default step).
FRAME_STEPS = 200
# A channel's full scale, for the noise level: the nominal voltage +15 % (datasheet range).
VOLTAGE_FULL_SCALE = 1.15
# Standard normals the noise is sliced from (at random offsets, per channel and frame).
NOISE_TABLE_MIN = 1 << 17
# Time scales of the slow random processes, in seconds.
VOLTAGE_WANDER_S = (30.0, 600.0)
FLUCTUATION_S = 60.0
POWER_FACTOR_WANDER_S = 300.0
CLOUD_S = 45.0
# How far the displacement angle wanders around the configured power factor's (relative).
POWER_FACTOR_WANDER = 0.1
# Appliance switching: each appliance keeps its state for a slot of this length range.
APPLIANCE_SLOT_S = (60.0, 600.0)
# The fast layer of the grid frequency wander is this many times faster than the slow one.
FREQUENCY_FAST_RATIO = 8.0
FREQUENCY_FAST_WEIGHT = 0.3
# OpenBLAS runs a matrix product on one thread below 65536 × 4 multiply-adds; above, it
# wakes worker threads that then spin, burning a second core for nothing on products this
# small. Products are cut into pieces below this size.
SINGLE_THREAD_PRODUCT = 200_000


class CtType(StrEnum):
    """How a load's currents reach the meter."""

    DIRECT = "direct"
    MV333 = "333mV"
    A5 = "5A"


class ProfileShape(StrEnum):
    """The daily pattern of a load's consumption."""

    RESIDENTIAL = "residential"
    OFFICE = "office"
    CONSTANT = "constant"
    EVENING = "evening"


HarmonicOrder = Annotated[int, Field(ge=2, le=50)]
VoltageHarmonicPct = Annotated[float, Field(ge=0.0, le=30.0)]
CurrentHarmonicPct = Annotated[float, Field(ge=0.0, le=100.0)]

DEFAULT_VOLTAGE_HARMONICS_PCT: dict[int, float] = {3: 0.8, 5: 2.0, 7: 1.0, 11: 0.5, 13: 0.3}
DEFAULT_CURRENT_HARMONICS_PCT: dict[int, float] = {3: 8.0, 5: 5.0, 7: 3.0, 9: 1.5, 11: 1.0, 13: 0.7}


class SimulatedLoad(BaseModel):
    """One simulated load: its wiring, its supply, its distortion and its daily profile."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        default="main",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Name of the load (letters, digits, '_' and '-'); unique within the site.",
    )
    wiring: Wiring = Field(default=Wiring.THREE_PHASE_4W, description="Wiring system of the load.")
    nominal_voltage_v: float = Field(
        default=230.0,
        ge=100.0,
        le=500.0,
        description=(
            "Nominal L-N voltage. 3P3W: L-L is √3 times it; 2P3W: each leg to neutral, legs "
            "180° apart; 3P4W-WL: L1-N and L2-N, the high leg L3-N being √3 times it."
        ),
    )
    nominal_frequency_hz: float = Field(
        default=50.0,
        ge=45.0,
        le=65.0,
        description="Nominal frequency; loads with the same nominal frequency share one grid.",
    )
    voltage_variation_pct: float = Field(
        default=2.0,
        ge=0.0,
        le=15.0,
        description="Bound of the slow wander of the voltage level, in %.",
    )
    voltage_unbalance_pct: float = Field(
        default=0.5,
        ge=0.0,
        le=10.0,
        description="Largest deviation of a phase voltage from the mean, %.",
    )
    voltage_harmonics_pct: dict[HarmonicOrder, VoltageHarmonicPct] = Field(
        default_factory=lambda: dict(DEFAULT_VOLTAGE_HARMONICS_PCT),
        description="Voltage harmonics: order → amplitude in % of the fundamental.",
    )
    current_harmonics_pct: dict[HarmonicOrder, CurrentHarmonicPct] = Field(
        default_factory=lambda: dict(DEFAULT_CURRENT_HARMONICS_PCT),
        description="Current harmonics: order → amplitude in % of the consumption's fundamental.",
    )
    noise_pct: float = Field(
        default=0.05,
        ge=0.0,
        le=5.0,
        description=(
            "RMS white noise on every channel, in % of its full scale (currents: the CT "
            "primary; voltages: the channel's nominal voltage +15 %)."
        ),
    )
    power_factor: float = Field(
        default=0.95, ge=0.1, le=1.0, description="Displacement power factor of the consumption."
    )
    power_factor_capacitive: bool = Field(
        default=False,
        description="Whether the consumption is capacitive (current leads) not inductive.",
    )
    unbalance_pct: float = Field(
        default=10.0,
        ge=0.0,
        le=90.0,
        description="Largest deviation of a phase's share of the power, %.",
    )
    ct_type: CtType = Field(default=CtType.DIRECT, description="How the currents are measured.")
    ct_primary_a: float = Field(
        default=65.0,
        gt=0.0,
        le=10000.0,
        description="CT primary rating; for direct connection the meter's Imax (65 A).",
    )
    profile: ProfileShape = Field(
        default=ProfileShape.RESIDENTIAL, description="Daily pattern of the consumption."
    )
    weekend_differs: bool = Field(
        default=True,
        description="Whether Saturdays and Sundays follow the pattern's weekend variant.",
    )
    base_load_w: float = Field(
        default=1500.0, ge=0.0, le=1e7, description="Consumption at the quietest time of the day."
    )
    peak_load_w: float = Field(
        default=9000.0, ge=0.0, le=1e7, description="Consumption at the busiest time of the day."
    )
    fluctuation_pct: float = Field(
        default=5.0,
        ge=0.0,
        le=50.0,
        description="Bound of the slow random fluctuation of consumption, %.",
    )
    appliance_share_pct: float = Field(
        default=30.0,
        ge=0.0,
        le=100.0,
        description="Share of the daily swing switched as appliance steps rather than smoothly, %.",
    )
    appliance_count: int = Field(
        default=6, ge=0, le=24, description="Number of appliances switching on and off."
    )
    pv_peak_w: float = Field(
        default=8000.0,
        ge=0.0,
        le=1e7,
        description="PV-like generation at clear-sky noon (0: none).",
    )
    pv_sunrise_h: float = Field(
        default=6.0, ge=0.0, le=24.0, description="Local hour generation starts."
    )
    pv_sunset_h: float = Field(
        default=19.0, ge=0.0, le=24.0, description="Local hour generation ends."
    )
    pv_cloudiness: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Probability that a cloud dims the generation (0–1).",
    )

    @model_validator(mode="after")
    def _check_ranges(self) -> Self:
        """Peak not below base; sunrise before sunset."""
        if self.peak_load_w < self.base_load_w:
            raise ValueError(
                f"peak_load_w ({self.peak_load_w:g}) must not be below base_load_w "
                f"({self.base_load_w:g})"
            )
        if self.pv_sunset_h <= self.pv_sunrise_h:
            raise ValueError("pv_sunset_h must be after pv_sunrise_h")
        return self

    @property
    def highest_harmonic(self) -> int:
        """The highest harmonic order of the voltages and currents."""
        return max([1, *self.voltage_harmonics_pct, *self.current_harmonics_pct])


def _default_loads() -> list[SimulatedLoad]:
    """The embedded default: one three-phase main load."""
    return [SimulatedLoad()]


class SimulatorConfig(BaseModel):
    """The simulated site: sampling, randomness, local time, grid frequency and loads."""

    model_config = ConfigDict(extra="forbid")

    sample_rate_hz: float = Field(
        default=6400.0, ge=1000.0, le=100_000.0, description="Samples per second per channel."
    )
    seed: int = Field(default=1, ge=0, lt=2**63, description="Seed of every random process.")
    start_s: float | None = Field(
        default=None,
        ge=0.0,
        description=(
            "Epoch seconds of the first sample; None: now, rounded down to the second, "
            "when the simulator is created."
        ),
    )
    utc_offset_h: float = Field(
        default=0.0,
        ge=-12.0,
        le=14.0,
        description="Offset of local time from UTC for the daily profile.",
    )
    frequency_drift_hz: float = Field(
        default=0.05,
        ge=0.0,
        le=0.5,
        description="Bound of the grid frequency's deviation from the nominal (smooth wander).",
    )
    frequency_drift_timescale_s: float = Field(
        default=60.0,
        ge=1.0,
        le=3600.0,
        description="Time between the slow wander's random turning points (a faster, weaker "
        "wander turns 8 times as often).",
    )
    loads: list[SimulatedLoad] = Field(
        default_factory=_default_loads,
        min_length=1,
        max_length=64,
        description="The simulated loads, in channel order.",
    )

    @model_validator(mode="after")
    def _check_site(self) -> Self:
        """Unique names, frequency within 45–65 Hz, harmonics below the Nyquist frequency."""
        names = [load.name for load in self.loads]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"load names must be unique: {', '.join(duplicates)}")
        for load in self.loads:
            f_low = load.nominal_frequency_hz - self.frequency_drift_hz
            f_high = load.nominal_frequency_hz + self.frequency_drift_hz
            if f_low < 45.0 or f_high > 65.0:
                raise ValueError(
                    f"load {load.name}: nominal frequency ± drift must stay within 45–65 Hz"
                )
            if load.highest_harmonic * f_high >= self.sample_rate_hz / 2.0:
                raise ValueError(
                    f"load {load.name}: harmonic {load.highest_harmonic} at {f_high:g} Hz "
                    f"exceeds half the sample rate ({self.sample_rate_hz:g} S/s)"
                )
        return self


def default_config() -> SimulatorConfig:
    """The embedded default: one 3P4W main load at 230 V, 50 Hz, with PV."""
    return SimulatorConfig()


@dataclass(frozen=True)
class _ExtensionLoad:
    """The demo settings of one extension load."""

    name: str
    ct_type: CtType
    ct_primary_a: float
    profile: ProfileShape
    base_load_w: float
    peak_load_w: float
    power_factor: float
    current_harmonics_pct: dict[int, float]
    capacitive: bool = False


# Plausible sub-loads of a small office building; harmonics as their typical equipment
# (drives: 5th/7th; LED drivers and IT supplies: 3rd; EV chargers: low).
_DRIVE = {5: 30.0, 7: 12.0, 11: 6.0, 13: 4.0}
_LED = {3: 25.0, 5: 12.0, 7: 6.0, 9: 4.0, 11: 2.0}
_DEMO_EXTENSIONS: tuple[_ExtensionLoad, ...] = (
    _ExtensionLoad("hvac", CtType.MV333, 200.0, ProfileShape.OFFICE, 800, 18000, 0.88, _DRIVE),
    _ExtensionLoad(
        "lighting", CtType.MV333, 50.0, ProfileShape.OFFICE, 150, 4000, 0.95, _LED, True
    ),
    _ExtensionLoad(
        "ev_charger", CtType.A5, 100.0, ProfileShape.EVENING, 0, 22000, 0.99, {5: 3.0, 7: 2.0}
    ),
    _ExtensionLoad(
        "kitchen", CtType.MV333, 100.0, ProfileShape.RESIDENTIAL, 400, 12000, 0.97, {3: 6.0, 5: 4.0}
    ),
    _ExtensionLoad("pumps", CtType.A5, 100.0, ProfileShape.CONSTANT, 2500, 6000, 0.84, _DRIVE),
    _ExtensionLoad(
        "it_room", CtType.MV333, 50.0, ProfileShape.CONSTANT, 4000, 5000, 0.98, {3: 12.0, 5: 6.0}
    ),
    _ExtensionLoad("lift", CtType.MV333, 100.0, ProfileShape.OFFICE, 200, 9000, 0.85, _DRIVE),
    _ExtensionLoad(
        "office_1", CtType.MV333, 63.0, ProfileShape.OFFICE, 400, 7000, 0.96, {3: 15.0, 5: 8.0}
    ),
    _ExtensionLoad(
        "office_2", CtType.MV333, 63.0, ProfileShape.OFFICE, 300, 6000, 0.96, {3: 15.0, 5: 8.0}
    ),
    _ExtensionLoad("outdoor", CtType.MV333, 50.0, ProfileShape.EVENING, 0, 3000, 0.95, _LED, True),
)
MAX_EXTENSION_LOADS = len(_DEMO_EXTENSIONS)


def demo_main_load(name: str = "main", with_extensions: bool = False) -> SimulatedLoad:
    """The main load: a house with PV alone, or an office building with PV above extensions."""
    if not with_extensions:
        return SimulatedLoad(name=name)
    return SimulatedLoad(
        name=name,
        profile=ProfileShape.OFFICE,
        base_load_w=4000.0,
        peak_load_w=30000.0,
        pv_peak_w=25000.0,
    )


def demo_extension_load(
    index: int, name: str | None = None, ct_type: CtType | None = None, ct_primary_a: float = 0.0
) -> SimulatedLoad:
    """The ``index``-th sub-load of the demo building, optionally renamed and re-wired to CTs."""
    e = _DEMO_EXTENSIONS[index % MAX_EXTENSION_LOADS]
    return SimulatedLoad(
        name=name or e.name,
        ct_type=ct_type or e.ct_type,
        ct_primary_a=ct_primary_a or e.ct_primary_a,
        profile=e.profile,
        base_load_w=e.base_load_w,
        peak_load_w=e.peak_load_w,
        power_factor=e.power_factor,
        power_factor_capacitive=e.capacitive,
        current_harmonics_pct=e.current_harmonics_pct,
        pv_peak_w=0.0,
    )


def demo_building_config(n_extension_loads: int) -> SimulatorConfig:
    """A small office building: a main load with PV plus up to 10 CT-measured extension loads."""
    if not 0 <= n_extension_loads <= MAX_EXTENSION_LOADS:
        raise ValueError(f"n_extension_loads must be 0–{MAX_EXTENSION_LOADS}")
    main = demo_main_load(with_extensions=True)
    extensions = [demo_extension_load(i) for i in range(n_extension_loads)]
    return SimulatorConfig(loads=[main, *extensions])


# ---------------------------------------------------------------------------------------------
# Hashed randomness: pure functions of (key, index), so any time slot can be evaluated alone.

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_U_GOLDEN, _U_MIX1, _U_MIX2 = np.uint64(_GOLDEN), np.uint64(_MIX1), np.uint64(_MIX2)
_U_11, _U_27, _U_30, _U_31 = np.uint64(11), np.uint64(27), np.uint64(30), np.uint64(31)


class _Stream(IntEnum):
    """Independent random streams, so that adding one process never changes another."""

    FREQUENCY = 1
    VOLTAGE = 2
    FLUCTUATION = 3
    APPLIANCE = 4
    POWER_FACTOR = 5
    CLOUD = 6
    HARMONIC_PHASE = 7
    UNBALANCE = 8
    NOISE = 9


def _splitmix(x: int) -> int:
    """splitmix64 on a Python int, wrapping at 64 bits."""
    x = (x + _GOLDEN) & _MASK64
    x = ((x ^ (x >> 30)) * _MIX1) & _MASK64
    x = ((x ^ (x >> 27)) * _MIX2) & _MASK64
    return x ^ (x >> 31)


def _key(*parts: int) -> int:
    """A 64-bit key naming one random stream."""
    key = 0
    for part in parts:
        key = _splitmix(key ^ (part & _MASK64))
    return key


def _uniform(key: int, index: IntArray) -> FloatArray:
    """Uniform numbers in [0, 1): the same (key, index) always gives the same number."""
    # splitmix64 of index·golden + key. Integer array arithmetic wraps at 64 bits silently,
    # which is what the hash wants.
    x = np.asarray(index, dtype=np.int64).astype(np.uint64)
    x *= _U_GOLDEN
    x += np.uint64(key)
    x ^= x >> _U_30
    x *= _U_MIX1
    x ^= x >> _U_27
    x *= _U_MIX2
    x ^= x >> _U_31
    x >>= _U_11
    return x.astype(np.float64) * 2.0**-53


def _name_id(name: str) -> int:
    """A stable number for a load name, so a load's randomness survives reordering."""
    return zlib.crc32(name.encode("utf-8"))


def _wander(key: int, t: FloatArray, period_s: float) -> FloatArray:
    """A smooth random wander within [-1, 1] at times ``t``.

    Random knots every ``period_s`` (a pure function of the knot's index), joined by a
    smoothstep: continuous, with a continuous slope, and never beyond the knots.
    """
    pos = t / period_s
    slot = np.floor(pos)
    x = pos - slot
    first = int(slot.min())
    knots = 2.0 * _uniform(key, np.arange(first, int(slot.max()) + 2, dtype=np.int64)) - 1.0
    i = (slot - first).astype(np.intp)
    a = knots[i]
    return a + (knots[i + 1] - a) * (x * x * (3.0 - 2.0 * x))


def _spread(key: int, n: int) -> FloatArray:
    """Fixed random deviations of ``n`` phases: mean 0, largest magnitude 1 (zeros if n = 1)."""
    u = _uniform(key, np.arange(n, dtype=np.int64))
    d = u - u.mean()
    largest = float(np.abs(d).max())
    return d / largest if largest > 0.0 else np.zeros(n)


# ---------------------------------------------------------------------------------------------
# Daily profile.


@dataclass(frozen=True)
class _DayShape:
    """A day's consumption as a fraction of the swing from base to peak load (0…1)."""

    night: float
    morning: float
    morning_h: float
    morning_width_h: float
    day: float
    day_start_h: float
    day_end_h: float
    evening: float
    evening_h: float
    evening_width_h: float

    def at(self, hour: FloatArray) -> FloatArray:
        """The fraction at the local ``hour`` (0–24)."""
        shape = (
            self.night
            + self.morning * _bump(hour, self.morning_h, self.morning_width_h)
            + self.day * _plateau(hour, self.day_start_h, self.day_end_h)
            + self.evening * _bump(hour, self.evening_h, self.evening_width_h)
        )
        return np.clip(shape, 0.0, 1.0)


def _bump(hour: FloatArray, centre_h: float, width_h: float) -> FloatArray:
    """A Gaussian peak around ``centre_h``, wrapping around midnight."""
    d = (hour - centre_h + 12.0) % 24.0 - 12.0
    return np.exp(-0.5 * (d / width_h) ** 2)


def _plateau(hour: FloatArray, start_h: float, end_h: float) -> FloatArray:
    """About 1 between ``start_h`` and ``end_h``, with half-hour soft edges."""
    edge_h = 0.4
    rise = 1.0 / (1.0 + np.exp(-(hour - start_h) / edge_h))
    fall = 1.0 / (1.0 + np.exp((hour - end_h) / edge_h))
    return rise * fall


# (weekday shape, weekend shape) for every profile.
_DAY_SHAPES: dict[ProfileShape, tuple[_DayShape, _DayShape]] = {
    ProfileShape.RESIDENTIAL: (
        _DayShape(0.08, 0.45, 7.25, 0.8, 0.22, 8.5, 17.0, 0.80, 19.75, 1.6),
        _DayShape(0.08, 0.40, 9.5, 1.3, 0.35, 10.0, 18.0, 0.80, 19.5, 1.8),
    ),
    ProfileShape.OFFICE: (
        _DayShape(0.05, 0.20, 8.5, 0.6, 0.75, 7.5, 18.5, 0.0, 20.0, 1.0),
        _DayShape(0.05, 0.0, 9.0, 1.0, 0.08, 9.0, 17.0, 0.0, 20.0, 1.0),
    ),
    ProfileShape.CONSTANT: (
        _DayShape(0.75, 0.0, 9.0, 1.0, 0.10, 8.0, 20.0, 0.0, 20.0, 1.0),
        _DayShape(0.75, 0.0, 9.0, 1.0, 0.10, 8.0, 20.0, 0.0, 20.0, 1.0),
    ),
    ProfileShape.EVENING: (
        _DayShape(0.15, 0.25, 6.5, 0.8, 0.0, 9.0, 17.0, 0.85, 20.5, 2.2),
        _DayShape(0.15, 0.20, 8.0, 1.0, 0.0, 9.0, 17.0, 0.85, 20.5, 2.5),
    ),
}


def _local_time(t_s: FloatArray, utc_offset_h: float) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Local hour of the day (0–24) and whether it is Saturday or Sunday, at epoch ``t_s``."""
    local = t_s + utc_offset_h * 3600.0
    days = np.floor(local / 86400.0)
    hour = (local - days * 86400.0) / 3600.0
    # 1970-01-01 was a Thursday: weekday 3 when Monday is 0.
    weekend = (days + 3.0) % 7.0 >= 5.0
    return hour, weekend


# ---------------------------------------------------------------------------------------------
# What every load of a frame shares: local time, day shapes and the sky.


class _FrameContext:
    """Site-wide quantities in a frame's steps, computed once for all loads."""

    def __init__(self, t_s: FloatArray, utc_offset_h: float, cloud_key: int) -> None:
        self.t_s = t_s
        self.hour, self.weekend = _local_time(t_s, utc_offset_h)
        self._shapes: dict[tuple[_DayShape, _DayShape], FloatArray] = {}
        # The sky is the site's: every load sees the same clouds (each with its own
        # cloudiness as the threshold a cloud must pass to dim it).
        pos = t_s / CLOUD_S
        slot = np.floor(pos)
        x = pos - slot
        self._cloud_ease = x * x * (3.0 - 2.0 * x)
        edges = slot.astype(np.int64)[None, :] + np.array([[0], [1]], dtype=np.int64)
        self._cloud_draw = _uniform(cloud_key, 2 * edges)
        self._cloud_depth = 0.3 + 0.6 * _uniform(cloud_key, 2 * edges + 1)

    def day_shape(self, weekday: _DayShape, weekend: _DayShape) -> FloatArray:
        """The day shape (0…1) in each step, weekday or weekend as the date says."""
        cached = self._shapes.get((weekday, weekend))
        if cached is None:
            if weekend is weekday or not self.weekend.any():
                cached = weekday.at(self.hour)
            elif self.weekend.all():
                cached = weekend.at(self.hour)
            else:
                cached = np.where(self.weekend, weekend.at(self.hour), weekday.at(self.hour))
            self._shapes[(weekday, weekend)] = cached
        return cached

    def sky_transmission(self, cloudiness: float) -> FloatArray:
        """Share of clear-sky generation getting through (1, or 10–70 % under a cloud)."""
        ends = np.where(self._cloud_draw < cloudiness, 1.0 - self._cloud_depth, 1.0)
        transmission: FloatArray = ends[0] + (ends[1] - ends[0]) * self._cloud_ease
        return transmission


# ---------------------------------------------------------------------------------------------
# Per-load model.


@dataclass(frozen=True)
class _Phases:
    """Fundamental angles and nominal L-N voltages of a wiring's phases."""

    angles: tuple[float, ...]
    voltage_factors: tuple[float, ...]


_PHASES: dict[Wiring, _Phases] = {
    Wiring.SINGLE_PHASE: _Phases((0.0,), (1.0,)),
    Wiring.SPLIT_PHASE: _Phases((0.0, math.pi), (1.0, 1.0)),
    Wiring.THREE_PHASE_3W: _Phases((0.0, -TWO_PI / 3, TWO_PI / 3), (1.0, 1.0, 1.0)),
    Wiring.THREE_PHASE_4W: _Phases((0.0, -TWO_PI / 3, TWO_PI / 3), (1.0, 1.0, 1.0)),
    # High-leg delta: L1 and L2 are the ends of the centre-tapped winding (120 V each side of
    # N for a 240 V delta); L3, the third delta corner, is at +90° and √3 × 120 = 208 V.
    Wiring.WILD_LEG: _Phases((0.0, math.pi, math.pi / 2), (1.0, 1.0, SQRT3)),
}


def _harmonic_row(
    orders: tuple[int, ...], amplitudes: dict[int, float], angle: float, phases: dict[int, float]
) -> FloatArray:
    """Coefficients on the (cos hθ, sin hθ) basis of Σ_h a_h cos(h(θ + angle) + φ_h)."""
    row = np.zeros(2 * len(orders))
    for h, a in amplitudes.items():
        i = orders.index(h)
        shift = h * angle + phases.get(h, 0.0)
        row[2 * i] += a * math.cos(shift)
        row[2 * i + 1] -= a * math.sin(shift)
    return row


def _harmonic_phases(key: int, orders: Iterable[int]) -> dict[int, float]:
    """A fixed random phase for each harmonic order."""
    h = np.array(sorted(orders), dtype=np.int64)
    return dict(zip(h.tolist(), (TWO_PI * _uniform(key, h)).tolist(), strict=True))


class _LoadModel:
    """One load: fixed parameters, slow envelopes, and how its channels follow from them.

    Every channel is linear in the load's phase quantities — per phase the current's
    active, reactive and harmonic amplitudes and the peak voltage (the ``envelopes``) — so
    a channel's waveform in a step is Σ_q envelope_q × pattern_q on the grid's harmonic
    basis. ``channel_map`` holds those patterns.
    """

    def __init__(self, cfg: SimulatedLoad, seed: int) -> None:
        self.cfg = cfg
        self.info = LoadInfo(cfg.name, cfg.wiring, cfg.nominal_frequency_hz)
        self.signals = (*REQUIRED_SIGNALS[cfg.wiring], *OPTIONAL_SIGNALS[cfg.wiring])
        phases = _PHASES[cfg.wiring]
        self.angles = phases.angles
        self.n_phases = len(self.angles)
        self.phase_voltage_v = cfg.nominal_voltage_v * np.array(phases.voltage_factors)
        name = _name_id(cfg.name)
        self.keys = {s: _key(seed, s, name) for s in _Stream}
        unbalance = self.keys[_Stream.UNBALANCE]
        self.power_weights = 1.0 + cfg.unbalance_pct / 100.0 * _spread(unbalance, self.n_phases)
        voltage_spread = _spread(_key(unbalance, 1), self.n_phases)
        voltage_weights = 1.0 + cfg.voltage_unbalance_pct / 100.0 * voltage_spread
        self.voltage_peak_v = (SQRT2 * self.phase_voltage_v * voltage_weights)[:, None]
        self.amps_per_w = (SQRT2 / self.phase_voltage_v)[:, None]
        self._init_appliances()
        weekday, weekend = _DAY_SHAPES[cfg.profile]
        self.day_shapes = (weekday, weekend if cfg.weekend_differs else weekday)
        self.noise_std = np.array(
            [self._full_scale(s) * cfg.noise_pct / 100.0 for s in self.signals]
        )

    def _init_appliances(self) -> None:
        """Sizes, switching slots and phases of the appliances."""
        n = self.cfg.appliance_count
        u = _uniform(self.keys[_Stream.APPLIANCE], np.arange(3 * n, dtype=np.int64)).reshape(3, n)
        self.appliance_power = (0.5 + u[0]) / (0.5 + u[0]).sum() if n else u[0]
        low, high = APPLIANCE_SLOT_S
        self.appliance_slot_s = (low + (high - low) * u[1])[:, None]
        self.appliance_offset_s = (self.appliance_slot_s[:, 0] * u[2])[:, None]
        self.appliance_index = np.arange(n, dtype=np.int64)[:, None]
        # Appliance i is connected to phase i mod n_phases (single-phase appliances).
        self.appliance_phase = np.zeros((self.n_phases, n))
        self.appliance_phase[np.arange(n) % self.n_phases, np.arange(n)] = 1.0

    def _full_scale(self, signal: str) -> float:
        """The RMS full scale of a channel."""
        if signal.startswith("i"):
            return self.cfg.ct_primary_a
        if signal in ("v_l12", "v_l23"):
            return VOLTAGE_FULL_SCALE * SQRT3 * self.cfg.nominal_voltage_v
        return VOLTAGE_FULL_SCALE * float(self.phase_voltage_v[int(signal[-1]) - 1])

    def channel_map(self, orders: tuple[int, ...], voltage_phases: dict[int, float]) -> FloatArray:
        """Patterns from the envelopes to the channels: (envelope, channel × basis row).

        Envelope rows are grouped as in ``envelopes``; basis rows are (cos hθ, sin hθ) for
        each harmonic order in ``orders``.
        """
        m = self.n_phases
        n_basis = 2 * len(orders)
        cfg = self.cfg
        current_phases = _harmonic_phases(
            self.keys[_Stream.HARMONIC_PHASE], cfg.current_harmonics_pct
        )
        v_amp = {1: 1.0, **{h: p / 100.0 for h, p in cfg.voltage_harmonics_pct.items()}}
        i_amp = {h: p / 100.0 for h, p in cfg.current_harmonics_pct.items()}
        # voltage[p] and current[p]: (envelope, basis) maps of phase p's voltage and current.
        voltage = np.zeros((m, 4 * m, n_basis))
        current = np.zeros((m, 4 * m, n_basis))
        for p, angle in enumerate(self.angles):
            current[p, p] = _harmonic_row(orders, {1: 1.0}, angle, {})
            current[p, m + p] = _harmonic_row(orders, {1: 1.0}, angle, {1: -math.pi / 2})
            current[p, 2 * m + p] = _harmonic_row(orders, i_amp, angle, current_phases)
            voltage[p, 3 * m + p] = _harmonic_row(orders, v_amp, angle, voltage_phases)
        if cfg.wiring is Wiring.THREE_PHASE_3W:
            # No neutral: the zero-sequence part (triplen harmonics, unbalance) cannot flow,
            # and i_l2 is -(i_l1 + i_l3).
            current -= current.mean(axis=0)
        channels = np.array([_signal_map(signal, voltage, current) for signal in self.signals])
        return channels.transpose(1, 0, 2).reshape(4 * m, -1)

    def envelopes(self, ctx: _FrameContext, grid_level: FloatArray) -> FloatArray:
        """Slow envelopes per step of the frame: (steps, 4 groups × phases).

        The groups, one column per phase: the peak amplitudes (A) of the current's cos, sin
        and harmonic waveforms, and the peak voltage (V).
        """
        consumption = self._consumption_w(ctx)
        angle = self._displacement_rad(ctx.t_s)
        active = consumption - self._generation_w(ctx)
        level = 1.0 + self.cfg.voltage_variation_pct / 100.0 * grid_level
        envelopes = np.vstack(
            [
                active * self.amps_per_w,
                consumption * np.tan(angle) * self.amps_per_w,
                consumption / np.cos(angle) * self.amps_per_w,
                self.voltage_peak_v * level,
            ]
        )
        return envelopes.T

    def _consumption_w(self, ctx: _FrameContext) -> FloatArray:
        """Consumption per phase (rows) per step, in W."""
        cfg = self.cfg
        share = cfg.appliance_share_pct / 100.0 if cfg.appliance_count else 0.0
        swing = cfg.peak_load_w - cfg.base_load_w
        fluctuation = 1.0 + cfg.fluctuation_pct / 100.0 * _wander(
            self.keys[_Stream.FLUCTUATION], ctx.t_s, FLUCTUATION_S
        )
        shape = ctx.day_shape(*self.day_shapes)
        smooth = cfg.base_load_w + swing * (1.0 - share) * shape * fluctuation
        per_phase = (self.power_weights / self.n_phases)[:, None] * smooth
        if share > 0.0:
            per_phase += swing * share * self._appliances_on(ctx.t_s, shape)
        return per_phase

    def _appliances_on(self, t_s: FloatArray, shape: FloatArray) -> FloatArray:
        """Fraction of the appliance power switched on, per phase (rows), at times ``t_s``."""
        slot = np.floor((t_s + self.appliance_offset_s) / self.appliance_slot_s)
        # Each appliance draws one random number per slot and is on while the day shape is
        # above it: mostly on or off for whole slots, and on average following the profile.
        index = slot.astype(np.int64) * 64 + self.appliance_index
        on = _uniform(self.keys[_Stream.APPLIANCE], index) < shape
        result: FloatArray = self.appliance_phase @ (on * self.appliance_power[:, None])
        return result

    def _displacement_rad(self, t_s: FloatArray) -> FloatArray:
        """Displacement angle of the consumption (positive: inductive) at times ``t_s``."""
        base = math.acos(self.cfg.power_factor)
        if base == 0.0:
            return np.zeros(t_s.size)
        wander = _wander(self.keys[_Stream.POWER_FACTOR], t_s, POWER_FACTOR_WANDER_S)
        angle = np.minimum(base * (1.0 + POWER_FACTOR_WANDER * wander), 1.5)
        return -angle if self.cfg.power_factor_capacitive else angle

    def _generation_w(self, ctx: _FrameContext) -> FloatArray:
        """PV-like generation per phase (a row that broadcasts) per step, in W."""
        cfg = self.cfg
        if cfg.pv_peak_w == 0.0:
            return np.zeros((1, ctx.t_s.size))
        daylight = (ctx.hour - cfg.pv_sunrise_h) / (cfg.pv_sunset_h - cfg.pv_sunrise_h)
        clear = np.sin(math.pi * np.clip(daylight, 0.0, 1.0)) ** 1.3
        sky = ctx.sky_transmission(cfg.pv_cloudiness)
        return (cfg.pv_peak_w / self.n_phases * clear * sky)[None, :]


def _signal_map(signal: str, voltage: FloatArray, current: FloatArray) -> FloatArray:
    """The (envelope, basis) map of one signal, from those of the phase voltages and currents."""
    result: FloatArray
    if signal == "v_l12":
        result = voltage[0] - voltage[1]
    elif signal == "v_l23":
        result = voltage[1] - voltage[2]
    elif signal == "i_n":
        # A measured neutral channel: the sum of the phase currents (load convention).
        result = current.sum(axis=0)
    else:
        phase = int(signal[-1]) - 1
        result = voltage[phase] if signal.startswith("v") else current[phase]
    return result


# ---------------------------------------------------------------------------------------------
# Grids: one per nominal frequency.


@dataclass(frozen=True)
class _FrameGeometry:
    """How a frame is cut: samples per step, steps per frame."""

    rate_hz: float
    step_samples: int
    steps: int

    @property
    def samples(self) -> int:
        """Samples per frame."""
        return self.step_samples * self.steps


class _Grid:
    """The loads sharing one nominal frequency: one frequency, one phase, one voltage wander."""

    def __init__(
        self,
        nominal_hz: float,
        loads: list[_LoadModel],
        cfg: SimulatorConfig,
        geometry: _FrameGeometry,
    ) -> None:
        self.nominal_hz = nominal_hz
        self.loads = loads
        self.drift_hz = cfg.frequency_drift_hz
        self.slow_s = cfg.frequency_drift_timescale_s
        self.geometry = geometry
        grid_id = round(nominal_hz * 1000.0)
        self.frequency_keys = (
            _key(cfg.seed, _Stream.FREQUENCY, grid_id, 0),
            _key(cfg.seed, _Stream.FREQUENCY, grid_id, 1),
        )
        self.voltage_keys = (
            _key(cfg.seed, _Stream.VOLTAGE, grid_id, 0),
            _key(cfg.seed, _Stream.VOLTAGE, grid_id, 1),
        )
        self.orders = tuple(sorted({1}.union(*(_orders_of(m.cfg) for m in loads))))
        # The grid's voltage distortion has one set of harmonic phases, shared by its loads.
        voltage_orders = {h for m in loads for h in m.cfg.voltage_harmonics_pct}
        voltage_phases = _harmonic_phases(
            _key(cfg.seed, _Stream.VOLTAGE, grid_id, 2), voltage_orders
        )
        self.maps = [m.channel_map(self.orders, voltage_phases) for m in loads]
        self.n_channels = sum(len(m.signals) for m in loads)
        self.cycles_at_frame = 0.0
        # Work arrays reused frame after frame (fresh large arrays cost page faults), laid
        # out step by step: (steps, rows, samples per step).
        steps, step_n = geometry.steps, geometry.step_samples
        n_basis = 2 * len(self.orders)
        self._basis = np.empty((steps, n_basis, step_n))
        self._coefficients = np.empty((steps, self.n_channels, n_basis))
        # The product is a batch of small matrix products, in chunks of channels small
        # enough to keep OpenBLAS on one thread (see SINGLE_THREAD_PRODUCT).
        chunk = max(1, SINGLE_THREAD_PRODUCT // (n_basis * step_n))
        self._chunks = [slice(c, c + chunk) for c in range(0, self.n_channels, chunk)]

    def render(self, bounds_s: FloatArray, ctx: _FrameContext, out: FloatArray) -> None:
        """Write one frame of the grid's channels, in load order, into ``out``.

        ``out`` is shaped (channels, steps, samples per step); ``bounds_s`` are the frame's
        step boundaries in seconds since the first sample; ``ctx`` holds the site's values
        in the middle of each step.
        """
        self._fill_basis(self._next_cycles(bounds_s))
        level = self._voltage_level((bounds_s[:-1] + bounds_s[1:]) / 2.0)
        first = 0
        for model, channel_map in zip(self.loads, self.maps, strict=True):
            # Each envelope holds still for one step (10 ms): the slow quantities barely
            # move in that time, and an appliance switching is a real step anyway.
            coefficients = _product(model.envelopes(ctx, level), channel_map)
            n = len(model.signals)
            self._coefficients[:, first : first + n] = coefficients.reshape(len(level), n, -1)
            first += n
        by_step = out.transpose(1, 0, 2)
        for rows in self._chunks:
            np.matmul(self._coefficients[:, rows], self._basis, out=by_step[:, rows])

    def frequency_hz(self, t_s: FloatArray) -> FloatArray:
        """The grid frequency at times ``t_s`` since the first sample."""
        if self.drift_hz == 0.0:
            return np.full(t_s.size, self.nominal_hz)
        slow = _wander(self.frequency_keys[0], t_s, self.slow_s)
        fast = _wander(self.frequency_keys[1], t_s, self.slow_s / FREQUENCY_FAST_RATIO)
        deviation = (1.0 - FREQUENCY_FAST_WEIGHT) * slow + FREQUENCY_FAST_WEIGHT * fast
        return self.nominal_hz + self.drift_hz * deviation

    def _voltage_level(self, t_s: FloatArray) -> FloatArray:
        """The grid's relative voltage wander (within [-1, 1]) at times ``t_s``."""
        fast_s, slow_s = VOLTAGE_WANDER_S
        fast = _wander(self.voltage_keys[0], t_s, fast_s)
        slow = _wander(self.voltage_keys[1], t_s, slow_s)
        return 0.4 * fast + 0.6 * slow

    def _next_cycles(self, bounds_s: FloatArray) -> FloatArray:
        """Phase in cycles at the frame's samples, (steps, samples per step).

        The frequency is evaluated at the step boundaries and runs linearly in between, so
        it never jumps; the phase is its exact sum sample by sample, continued from the
        previous frame.
        """
        n = self.geometry.step_samples
        per_sample = self.frequency_hz(bounds_s) / self.geometry.rate_hz
        start, slope = per_sample[:-1, None], np.diff(per_sample)[:, None]
        r = np.arange(n, dtype=np.float64)
        # Sample r of a step is Σ_{k<r} (start + slope·k/n) cycles after the step's first.
        within = start * r + slope * (r * (r - 1.0) / (2.0 * n))
        step_cycles = per_sample[:-1] * n + np.diff(per_sample) * ((n - 1.0) / 2.0)
        total = np.cumsum(step_cycles)
        first = np.concatenate(([0.0], total[:-1])) + self.cycles_at_frame
        # Only the fraction matters; keeping it small keeps the phase exact for years.
        self.cycles_at_frame = (self.cycles_at_frame + float(total[-1])) % 1.0
        cycles: FloatArray = within + first[:, None]
        return cycles

    def _fill_basis(self, cycles: FloatArray) -> None:
        """cos(hθ) and sin(hθ) of every harmonic order at these phases (in cycles)."""
        z = np.exp(1j * TWO_PI * cycles)
        power = z.copy()
        order = 1
        # Higher harmonics by repeated multiplication: far cheaper than a cos/sin per order.
        for i, h in enumerate(self.orders):
            while order < h:
                power *= z
                order += 1
            self._basis[:, 2 * i] = power.real
            self._basis[:, 2 * i + 1] = power.imag


def _product(a: FloatArray, b: FloatArray) -> FloatArray:
    """``a @ b``, row chunk by row chunk, each small enough for one BLAS thread."""
    rows = max(1, SINGLE_THREAD_PRODUCT // (a.shape[1] * b.shape[1]))
    if rows >= len(a):
        result: FloatArray = a @ b
        return result
    return np.vstack([a[k : k + rows] @ b for k in range(0, len(a), rows)])


def _orders_of(cfg: SimulatedLoad) -> set[int]:
    """The harmonic orders a load uses."""
    return {*cfg.voltage_harmonics_pct, *cfg.current_harmonics_pct}


# ---------------------------------------------------------------------------------------------
# The source.


class Simulator:
    """The simulated site as a source of gapless sample blocks, forever."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        cfg = config if config is not None else default_config()
        self._config = cfg
        self._rate = float(cfg.sample_rate_hz)
        self._start_s = float(cfg.start_s) if cfg.start_s is not None else float(int(time.time()))
        self._geometry = _FrameGeometry(self._rate, max(1, round(STEP_S * self._rate)), FRAME_STEPS)
        models = [_LoadModel(load, cfg.seed) for load in cfg.loads]
        self._loads = tuple(m.info for m in models)
        self._channels = tuple(ChannelId(m.cfg.name, s) for m in models for s in m.signals)
        self._grids = [
            _Grid(f, [m for m in models if m.cfg.nominal_frequency_hz == f], cfg, self._geometry)
            for f in dict.fromkeys(m.cfg.nominal_frequency_hz for m in models)
        ]
        self._grid_rows = [self._rows_of(grid, models) for grid in self._grids]
        self._cloud_key = _key(cfg.seed, _Stream.CLOUD)
        self._noise_std = np.concatenate([m.noise_std for m in models])
        noise_seed = _key(cfg.seed, _Stream.NOISE)
        table_n = max(NOISE_TABLE_MIN, 4 * self._geometry.samples)
        self._noise_table = np.random.default_rng([noise_seed, 0]).standard_normal(table_n)
        self._noise_offsets = np.random.default_rng([noise_seed, 1])
        self._frame_index = 0
        self._frame = np.empty((len(self._channels), 0))
        self._frame_pos = 0
        self._position = 0

    @classmethod
    def from_config(cls, config: SimulatorConfig) -> Simulator:
        """A simulator of ``config``."""
        return cls(config)

    @staticmethod
    def _rows_of(grid: _Grid, models: list[_LoadModel]) -> slice | IntArray:
        """The block rows of a grid's channels: a slice when they are consecutive."""
        first = np.cumsum([0, *(len(m.signals) for m in models)])
        rows = np.concatenate(
            [np.arange(first[k], first[k + 1]) for k, m in enumerate(models) if m in grid.loads]
        )
        if np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):
            return slice(int(rows[0]), int(rows[0]) + len(rows))
        return rows

    @property
    def config(self) -> SimulatorConfig:
        """The configuration simulated."""
        return self._config

    @property
    def sample_rate_hz(self) -> float:
        """Samples per second per channel."""
        return self._rate

    @property
    def channels(self) -> tuple[ChannelId, ...]:
        """Per load in configuration order: its wiring's required then optional signals."""
        return self._channels

    @property
    def loads(self) -> tuple[LoadInfo, ...]:
        """The simulated loads, in configuration order."""
        return self._loads

    @property
    def start_s(self) -> float:
        """Epoch seconds of the first sample."""
        return self._start_s

    @property
    def time_s(self) -> float:
        """Epoch seconds of the next sample ``read`` returns."""
        return self._start_s + self._position / self._rate

    def read(self, max_samples: int) -> SampleBlock:
        """The next ``max_samples`` samples of every channel (the simulator never runs out)."""
        if max_samples < 1:
            raise ValueError(f"max_samples must be at least 1, got {max_samples}")
        start = self.time_s
        self._position += max_samples
        if self._frame_pos == self._frame.shape[1]:
            self._next_frame()
        if self._frame_pos + max_samples <= self._frame.shape[1]:
            # Within one frame: a view, no copy (frames are never written once rendered).
            samples = self._frame[:, self._frame_pos : self._frame_pos + max_samples]
            self._frame_pos += max_samples
            return SampleBlock(start, self._rate, self._channels, samples)
        out = np.empty((len(self._channels), max_samples))
        filled = 0
        while filled < max_samples:
            if self._frame_pos == self._frame.shape[1]:
                self._next_frame()
            take = min(max_samples - filled, self._frame.shape[1] - self._frame_pos)
            out[:, filled : filled + take] = self._frame[
                :, self._frame_pos : self._frame_pos + take
            ]
            self._frame_pos += take
            filled += take
        return SampleBlock(start, self._rate, self._channels, out)

    def close(self) -> None:
        """Nothing to release."""

    def _next_frame(self) -> None:
        """Render the next fixed-length frame of every channel."""
        geometry = self._geometry
        first = self._frame_index * geometry.samples
        self._frame_index += 1
        steps = np.arange(geometry.steps + 1, dtype=np.float64)
        bounds_s = (first + geometry.step_samples * steps) / self._rate
        # Slow quantities are evaluated in the middle of each step.
        middles_s = self._start_s + (bounds_s[:-1] + bounds_s[1:]) / 2.0
        ctx = _FrameContext(middles_s, self._config.utc_offset_h, self._cloud_key)
        frame = np.empty((len(self._channels), geometry.samples))
        shape = (geometry.steps, geometry.step_samples)
        for grid, rows in zip(self._grids, self._grid_rows, strict=True):
            if isinstance(rows, slice):
                grid.render(bounds_s, ctx, frame[rows].reshape(-1, *shape))
            else:
                part = np.empty((len(rows), *shape))
                grid.render(bounds_s, ctx, part)
                frame[rows] = part.reshape(len(rows), -1)
        self._add_noise(frame)
        self._frame = frame
        self._frame_pos = 0

    def _add_noise(self, frame: FloatArray) -> None:
        """White noise on every channel: slices of a normal table at random offsets."""
        n = frame.shape[1]
        offsets = self._noise_offsets.integers(0, self._noise_table.size - n + 1, len(frame))
        for row, (std, offset) in enumerate(zip(self._noise_std, offsets, strict=True)):
            if std > 0.0:
                frame[row] += std * self._noise_table[offset : offset + n]
