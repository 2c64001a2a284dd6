"""The BACnet object table as data, generated from the vocabulary (emsbox.variables).

Every load has the same 82 objects, numbered ``k * 1000 + i``: ``k`` the load's place in the
configuration (1, 2, …) and ``i`` the variable's index in ``variables.ALL``; so an instance
names the same variable on every load and in every wiring, and the object list changes only
when loads are added or removed.

- instantaneous variables: analog-input (read-only REAL);
- energy and hour counters: analog-value, read-only. An accumulator's presentValue is an
  Unsigned with a scale (clause 12.1), which many building management systems do not read;
  every one reads an analog value's REAL. A REAL holds 7 significant digits: a counter of
  1 000 000 kWh still resolves 0.0625 kWh;
- ``tariff``: multi-state-value with the states "tariff 1" and "tariff 2";
- ``partial_running``: binary-value (active while the partial counters count);
- the device's digital input and output: binary-input 0 and binary-output 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from emsbox.gateways.bacnet.config import PF_UNIT_KEY
from emsbox.gateways.bacnet.identifiers import EngineeringUnits, ObjectType
from emsbox.variables import ALL, Kind, Variable

LOAD_STRIDE = 1000  # instance = load number * 1000 + variable index

# Vocabulary units as BACnetEngineeringUnits (clause 21); the power factor has "power-factor".
UNITS_BY_SYMBOL: dict[str, EngineeringUnits] = {
    "V": EngineeringUnits.VOLTS,
    "A": EngineeringUnits.AMPERES,
    "W": EngineeringUnits.WATTS,
    "var": EngineeringUnits.VOLT_AMPERES_REACTIVE,
    "VA": EngineeringUnits.VOLT_AMPERES,
    "": EngineeringUnits.POWER_FACTOR,
    "Hz": EngineeringUnits.HERTZ,
    "%": EngineeringUnits.PERCENT,
    "kWh": EngineeringUnits.KILOWATT_HOURS,
    "kvarh": EngineeringUnits.KILOVOLT_AMPERE_HOURS_REACTIVE,
    "kVAh": EngineeringUnits.KILOVOLT_AMPERE_HOURS,
    "h": EngineeringUnits.HOURS,
}

# Default COV increments by unit: a change a building management system wants to see, not
# the measurement noise (a meter's values move a little every second).
DEFAULT_COV_INCREMENTS: dict[str, float] = {
    "V": 1.0,
    "A": 0.1,
    "W": 100.0,
    "var": 100.0,
    "VA": 100.0,
    PF_UNIT_KEY: 0.01,
    "Hz": 0.05,
    "%": 0.5,
    "kWh": 1.0,
    "kvarh": 1.0,
    "kVAh": 1.0,
    "h": 1.0,
}

TARIFF_STATES = ("tariff 1", "tariff 2")
DIGITAL_INPUT_NAME = "digital_input"
DIGITAL_OUTPUT_NAME = "digital_output"


@dataclass(frozen=True)
class ObjectSpec:
    """One object of the device (other than the device object): what it is and serves."""

    type: ObjectType
    instance: int
    name: str
    description: str
    load: str | None = None  # None: the digital input or output
    variable: str | None = None
    units: EngineeringUnits | None = None
    cov_increment: float | None = None

    @property
    def key(self) -> tuple[int, int]:
        """(object type, instance): the object identifier's two parts."""
        return int(self.type), self.instance


def object_type_of(variable: Variable) -> ObjectType:
    """The object type serving a variable (see the module's docstring for why)."""
    if variable.kind is Kind.INSTANTANEOUS:
        return ObjectType.ANALOG_INPUT
    if variable.kind in (Kind.ENERGY, Kind.HOURS):
        return ObjectType.ANALOG_VALUE
    if variable.name == "tariff":
        return ObjectType.MULTI_STATE_VALUE
    return ObjectType.BINARY_VALUE


def unit_key(variable: Variable) -> str:
    """The key of a variable's unit in the COV increments ("PF" for the power factor)."""
    return variable.unit or PF_UNIT_KEY


def cov_increment(variable: Variable, overrides: Mapping[str, float]) -> float | None:
    """A variable's COV increment: by name, else by unit, else the unit's default; None for
    the state variables (any change of state is reported)."""
    if variable.kind is Kind.STATE:
        return None
    key = unit_key(variable)
    return overrides.get(variable.name, overrides.get(key, DEFAULT_COV_INCREMENTS[key]))


def load_objects(
    number: int, load: str, overrides: Mapping[str, float] | None = None
) -> list[ObjectSpec]:
    """The objects of the ``number``-th load (1-based) in variable order."""
    overrides = overrides or {}
    out = []
    for index, variable in enumerate(ALL):
        kind = object_type_of(variable)
        analog = kind in (ObjectType.ANALOG_INPUT, ObjectType.ANALOG_VALUE)
        out.append(
            ObjectSpec(
                type=kind,
                instance=number * LOAD_STRIDE + index,
                name=f"{load}.{variable.name}",
                description=f"{load}: {variable.description}",
                load=load,
                variable=variable.name,
                units=UNITS_BY_SYMBOL[variable.unit] if analog else None,
                cov_increment=cov_increment(variable, overrides),
            )
        )
    return out


DIGITAL_INPUT = ObjectSpec(
    ObjectType.BINARY_INPUT, 0, DIGITAL_INPUT_NAME, "Digital input: active while closed"
)
DIGITAL_OUTPUT = ObjectSpec(
    ObjectType.BINARY_OUTPUT, 0, DIGITAL_OUTPUT_NAME, "Digital output: active while on"
)


def object_table(
    loads: Sequence[str], overrides: Mapping[str, float] | None = None, digital_io: bool = True
) -> list[ObjectSpec]:
    """Every object but the device: each load's in configuration order, then the I/O."""
    out: list[ObjectSpec] = []
    for number, load in enumerate(loads, start=1):
        out += load_objects(number, load, overrides)
    if digital_io:
        out += [DIGITAL_INPUT, DIGITAL_OUTPUT]
    return out
