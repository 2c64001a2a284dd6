"""Each unit's registers: the maps filled with its load's latest reading, ready to be read.

A unit's image is immutable bytes, rebuilt whenever its load publishes a reading (once a
second); a request only slices it, so answering costs the same however many clients read.

Unit ids: 1 is the first load (the main meter), 2, 3, … the next ones in configuration order;
0 and 255, which TCP clients use for "the device itself", also answer as unit 1. Each unit
holds three maps at once, in separate register ranges:

- SunSpec at 40000: ``SunS``, the common model 1, one meter model by wiring, the end marker;
- the native map at 30000: every variable as float32, counters also as uint64;
- the command registers at 39000: the partial counters, the tariff and the digital output
  (commands.py);
- a Carlo Gavazzi EM24 Ethernet / EM340 compatible map from 0x0000 (32-bit values low word
  first), with the identification registers those meters' drivers read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from emsbox.bus import Reading
from emsbox.gateways.modbus.commands import COMMAND_BASE
from emsbox.gateways.modbus.protocol import ExceptionCode, ModbusError
from emsbox.gateways.modbus.register_map import blocks, encode, read_table
from emsbox.gateways.modbus.sunspec_models import SunSpecModels
from emsbox.samples import Wiring

SUNSPEC_BASE = 40000
NATIVE_BASE = 30000
SUNS = b"SunS"
END_MARKER = b"\xff\xff\x00\x00"  # model id 0xFFFF, length 0

COMMON = read_table("sunspec_common")
METER_INT = read_table("sunspec_meter_int")
METER_FLOAT = read_table("sunspec_meter_float")
NATIVE = read_table("native")
COMMANDS = read_table("commands")
CARLO_GAVAZZI = blocks(read_table("carlo_gavazzi"))
# The model a Carlo Gavazzi client finds at 0x000B when it reads that register alone:
# EM24DINAV23XE1X, the EM24 Ethernet. Read with 0x000A it is V L3-L1's high word.
CG_IDENTIFICATION = 0x000B
CG_MODEL_CODE = 1648
# The Carlo Gavazzi "measuring system" register (0x1002) by wiring.
_CG_SYSTEM = {
    Wiring.THREE_PHASE_4W: 0,  # 3P.n
    Wiring.WILD_LEG: 0,
    Wiring.SPLIT_PHASE: 2,  # 2P
    Wiring.SINGLE_PHASE: 3,  # 1P
    Wiring.THREE_PHASE_3W: 4,  # 3P
}

# SunSpec meter model by wiring: 201 single phase, 202 split phase, 203 wye, 204 delta
# (the float models are 10 more). All four share one register layout.
_INT_MODEL = {
    Wiring.SINGLE_PHASE: 201,
    Wiring.SPLIT_PHASE: 202,
    Wiring.THREE_PHASE_4W: 203,
    Wiring.WILD_LEG: 203,
    Wiring.THREE_PHASE_3W: 204,
}


@dataclass(frozen=True)
class LoadRating:
    """What the map of a load needs to know of it: name, wiring and the largest values it
    can show (for the scale factors of the integer SunSpec models)."""

    name: str
    wiring: Wiring
    max_current_a: float
    max_voltage_ln_v: float


def scale_factor(largest: float) -> int:
    """The smallest power of ten that keeps ``largest`` within an int16 (SunSpec ``sunssf``)."""
    sf = -3
    while largest / 10.0**sf > 32767 and sf < 10:
        sf += 1
    return sf


def int_scale_factors(rating: LoadRating) -> dict[str, int]:
    """The SunSpec integer models' scale factors for a load, fixed by its rating."""
    v_ll = rating.max_voltage_ln_v * math.sqrt(3.0)
    power = 3.0 * rating.max_voltage_ln_v * rating.max_current_a
    return {
        "A_SF": scale_factor(3.0 * rating.max_current_a),
        "V_SF": scale_factor(v_ll),
        "Hz_SF": -2,
        "W_SF": scale_factor(power),
        "VA_SF": scale_factor(power),
        "VAR_SF": scale_factor(power),
        "PF_SF": -2,
        "TotWh_SF": 0,
        "TotVAh_SF": 0,
        "TotVArh_SF": 0,
    }


@dataclass(frozen=True)
class Block:
    """Registers from ``start`` on, as big-endian bytes."""

    start: int
    data: bytes

    @property
    def end(self) -> int:
        """The first register after the block."""
        return self.start + len(self.data) // 2


class UnitImage:
    """The registers one unit answers with; a read must lie within one block. ``singles``
    answer a read of exactly that one register instead (an identification code that shares
    its address with half of another value)."""

    def __init__(self, blocks: Sequence[Block], singles: Mapping[int, int] | None = None) -> None:
        self.blocks = tuple(sorted(blocks, key=lambda b: b.start))
        self.singles = {a: v.to_bytes(2, "big") for a, v in (singles or {}).items()}

    def read(self, address: int, count: int) -> bytes:
        """``count`` registers from ``address``; exception 02 outside every block."""
        if count == 1 and address in self.singles:
            return self.singles[address]
        for block in self.blocks:
            if block.start <= address and address + count <= block.end:
                at = 2 * (address - block.start)
                return block.data[at : at + 2 * count]
        raise ModbusError(ExceptionCode.ILLEGAL_DATA_ADDRESS)


@dataclass(frozen=True)
class Identity:
    """What the SunSpec common model says of the device."""

    version: str
    serial: str


def _values(reading: Reading | None) -> Mapping[str, float]:
    return {} if reading is None else reading.as_dict()


def sunspec_block(
    rating: LoadRating,
    unit_id: int,
    reading: Reading | None,
    identity: Identity,
    models: SunSpecModels,
) -> Block:
    """The SunSpec registers of one unit: marker, common model, meter model, end marker."""
    values = _values(reading)
    common = encode(
        COMMON,
        values,
        {
            "Md": f"emsbox {rating.wiring.value}",
            "Opt": rating.name,
            "Vr": identity.version,
            "SN": f"{identity.serial}-{unit_id}",
            "DA": unit_id,
        },
    )
    model = _INT_MODEL[rating.wiring]
    if models is SunSpecModels.FLOAT:
        meter = encode(METER_FLOAT, values, {"ID": model + 10})
    else:
        meter = encode(METER_INT, values, {"ID": model, **int_scale_factors(rating)})
    return Block(SUNSPEC_BASE, SUNS + common + meter + END_MARKER)


def native_block(reading: Reading | None) -> Block:
    """The native map of one unit."""
    stamp = 0 if reading is None else round(reading.timestamp_s * 1000)
    return Block(NATIVE_BASE, encode(NATIVE, _values(reading), {"timestamp_ms": stamp}))


def _version_code(version: str) -> int:
    """A version as Carlo Gavazzi meters code it: major and minor in a nibble each, then
    the patch level in the low byte."""
    parts = [int(x) if x.isdigit() else 0 for x in [*version.split("."), "0", "0"][:3]]
    return (parts[0] & 0xF) << 12 | (parts[1] & 0xF) << 8 | (parts[2] & 0xFF)


def carlo_gavazzi_blocks(
    rating: LoadRating, unit_id: int, reading: Reading | None, identity: Identity
) -> list[Block]:
    """The Carlo Gavazzi EM24 Ethernet / EM340 compatible registers of one unit."""
    values = _values(reading)
    version = _version_code(identity.version)
    fixed: dict[str, int | str] = {
        "Version code": version,
        "Revision code": version,
        "Firmware version": version,
        "Measuring system": _CG_SYSTEM[rating.wiring],
        "Serial number": f"{identity.serial[:5]}{unit_id:02d}",
        "Production year": time.gmtime().tm_year,
    }
    return [Block(start, encode(points, values, fixed)) for start, points in CARLO_GAVAZZI]


def commands_block(reading: Reading | None, output_on: bool = False) -> Block:
    """The command registers of one unit, reading back the state they set."""
    return Block(
        COMMAND_BASE, encode(COMMANDS, _values(reading), {"output_command": int(output_on)})
    )


def unit_image(
    rating: LoadRating,
    unit_id: int,
    reading: Reading | None,
    identity: Identity,
    models: SunSpecModels,
    *,
    output_on: bool = False,
) -> UnitImage:
    """Every map of one unit, filled with ``reading`` (None: every value not implemented)
    and the digital output's state."""
    return UnitImage(
        [
            sunspec_block(rating, unit_id, reading, identity, models),
            native_block(reading),
            commands_block(reading, output_on),
            *carlo_gavazzi_blocks(rating, unit_id, reading, identity),
        ],
        singles={CG_IDENTIFICATION: CG_MODEL_CODE},
    )
