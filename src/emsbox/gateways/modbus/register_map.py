"""Register maps as data: a table of points (address, type, variable) read from a CSV file,
and the encoding of a load's values into registers by such a table.

A table has the columns ``address`` (register offset from the start of its block), ``name``
(the point's name in the map's own terms), ``type``, ``variable`` (a VARIABLES.md name, or a
derived one of ``DERIVED``; empty for a fixed value), ``scale`` (factor from the variable's unit
to the register's unit; empty: 1), ``sf`` (the scale-factor point an integer is scaled by),
``unit`` (the register's unit, for the docs) and ``value`` (a fixed value).

Types: ``uint16``, ``int16``, ``acc32`` (unsigned 32 bit, wrapping), ``uint64``, ``float32``
(IEEE 754), each high word first; ``int32_lw`` (signed 32 bit, low word first, as Carlo
Gavazzi meters send it); ``sunssf`` (a SunSpec scale factor, int16); ``string:N`` (N registers
of ASCII, NUL padded); ``bitfield32``; ``pad``. A value the load does not have (its wiring
lacks the phase) is sent as the row's ``value`` if it has one, else as "not implemented": NaN
for floats, 0x8000 for int16 and pad, 0xFFFF for uint16, 0 for accumulators, bit fields and
int32_lw, all ones for uint64.
"""

from __future__ import annotations

import csv
import math
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from importlib import resources

from emsbox.variables import BY_NAME

# Values computed from others, for points that no variable holds as such.
DERIVED: dict[str, tuple[str, Callable[[Mapping[str, float]], float | None]]] = {}


def _sum_of(names: tuple[str, ...]) -> Callable[[Mapping[str, float]], float | None]:
    def total(values: Mapping[str, float]) -> float | None:
        present = [values[n] for n in names if n in values]
        return math.fsum(present) if present else None

    return total


def _derive(name: str, meaning: str, names: tuple[str, ...]) -> None:
    DERIVED[name] = (meaning, _sum_of(names))


_derive("i_sum", "sum of the phase currents in use", ("i_l1", "i_l2", "i_l3"))
_derive("kvah_imp", "apparent energy while importing: kvah_q1 + kvah_q4", ("kvah_q1", "kvah_q4"))
_derive("kvah_exp", "apparent energy while exporting: kvah_q2 + kvah_q3", ("kvah_q2", "kvah_q3"))

SIZES = {
    "uint16": 1,
    "int16": 1,
    "sunssf": 1,
    "pad": 1,
    "acc32": 2,
    "bitfield32": 2,
    "float32": 2,
    "int32_lw": 2,
    "uint64": 4,
}
INT16_NA = 0x8000
UINT16_NA = 0xFFFF
UINT64_NA = 0xFFFF_FFFF_FFFF_FFFF


class MapError(ValueError):
    """A table that is not a valid register map."""


@dataclass(frozen=True)
class Point:
    """One value of a register map."""

    address: int
    name: str
    type: str
    variable: str
    scale: float
    sf: str
    unit: str
    value: str

    @property
    def size(self) -> int:
        """Registers the point takes."""
        if self.type.startswith("string:"):
            return int(self.type.removeprefix("string:"))
        return SIZES[self.type]


def _check(point: Point, line: int) -> None:
    where = f"line {line} ({point.name})"
    if not (point.type in SIZES or point.type.startswith("string:")):
        raise MapError(f"{where}: unknown type {point.type!r}")
    if point.type.startswith("string:") and not point.type.removeprefix("string:").isdigit():
        raise MapError(f"{where}: a string's size is a number of registers")
    if point.variable and point.variable not in BY_NAME and point.variable not in DERIVED:
        raise MapError(f"{where}: {point.variable!r} is neither a variable nor derived")


def read_table(name: str) -> tuple[Point, ...]:
    """The points of the table ``maps/<name>.csv``, checked, in address order."""
    text = resources.files(__package__).joinpath("maps", f"{name}.csv").read_text("utf-8")
    return parse_table(text.splitlines())


def parse_table(lines: Iterable[str]) -> tuple[Point, ...]:
    """Points from the lines of a CSV table; MapError for an invalid one."""
    points: list[Point] = []
    end = 0
    for line, row in enumerate(csv.DictReader(lines), start=2):
        try:
            point = Point(
                address=int(row["address"], 0),
                name=row["name"],
                type=row["type"],
                variable=row.get("variable") or "",
                scale=float(row.get("scale") or 1.0),
                sf=row.get("sf") or "",
                unit=row.get("unit") or "",
                value=row.get("value") or "",
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MapError(f"line {line}: {exc}") from exc
        _check(point, line)
        if point.address < end:
            raise MapError(f"line {line} ({point.name}): overlaps the point before it")
        end = point.address + point.size
        points.append(point)
    return tuple(points)


def blocks(points: tuple[Point, ...], gap: int = 32) -> list[tuple[int, tuple[Point, ...]]]:
    """A table of far-apart points cut into blocks where two points are more than ``gap``
    registers apart: (start, the block's points with addresses from its start)."""
    out: list[tuple[int, list[Point]]] = []
    end = None
    for p in points:
        if end is None or p.address - end > gap:
            out.append((p.address, []))
        start, members = out[-1]
        members.append(replace(p, address=p.address - start))
        end = p.address + p.size
    return [(start, tuple(members)) for start, members in out]


def table_size(points: tuple[Point, ...]) -> int:
    """Registers from the table's start to the end of its last point."""
    return max((p.address + p.size for p in points), default=0)


def _number(point: Point, values: Mapping[str, float]) -> float | None:
    name = point.variable
    raw = DERIVED[name][1](values) if name in DERIVED else values.get(name)
    if raw is None or not math.isfinite(raw):
        return None
    return float(raw) * point.scale


def _clamp(x: float, lo: int, hi: int) -> int:
    return max(lo, min(hi, round(x)))


def encode(
    points: tuple[Point, ...], values: Mapping[str, float], fixed: Mapping[str, int | str]
) -> bytes:
    """The registers of a table as big-endian bytes: ``values`` by variable name, ``fixed`` by
    point name (scale factors, identification strings, constants) over the table's ``value``."""
    out = bytearray(2 * table_size(points))
    for p in points:
        at = 2 * p.address
        given = fixed.get(p.name, p.value)
        if p.type.startswith("string:"):
            text = str(given).encode("ascii", "replace")[: 2 * p.size]
            out[at : at + len(text)] = text
            continue
        if p.type in ("sunssf", "pad") or (not p.variable and p.type != "float32"):
            raw = int(given) if given != "" else (INT16_NA if p.type == "pad" else 0)
            width = 2 * p.size
            out[at : at + width] = (raw & ((1 << (8 * width)) - 1)).to_bytes(width, "big")
            continue
        x = _number(p, values)
        out[at : at + 2 * p.size] = _encoded(p, x, fixed)
    return bytes(out)


def _encoded(p: Point, x: float | None, fixed: Mapping[str, int | str]) -> bytes:
    if p.type == "float32":
        return struct.pack(">f", math.nan if x is None else x)
    if p.type == "int16":
        if x is None:
            return struct.pack(">H", INT16_NA if p.value == "" else int(p.value) & 0xFFFF)
        sf = int(fixed[p.sf]) if p.sf else 0
        return struct.pack(">h", _clamp(x / 10.0**sf, -32767, 32767))
    if p.type == "int32_lw":
        raw = int(p.value or 0) if x is None else _clamp(x, -(2**31) + 1, 2**31 - 1)
        low, high = raw & 0xFFFF, (raw >> 16) & 0xFFFF
        return struct.pack(">HH", low, high)
    if p.type == "uint16":
        return struct.pack(">H", UINT16_NA if x is None else _clamp(x, 0, 0xFFFE))
    if p.type in ("acc32", "bitfield32"):
        if x is None:
            return bytes(4)
        sf = int(fixed[p.sf]) if p.sf else 0
        return struct.pack(">I", round(x / 10.0**sf) % (1 << 32))
    if p.type == "uint64":
        return struct.pack(">Q", UINT64_NA if x is None else _clamp(x, 0, UINT64_NA - 1))
    raise MapError(f"{p.name}: cannot encode type {p.type}")


def decode(points: tuple[Point, ...], data: bytes) -> dict[str, float]:
    """The variables a table's registers hold (``data`` from the table's start), in the
    vocabulary's units: what a client of a meter with this map reads. A point sent as "not
    implemented", or holding a derived value, gives nothing."""
    sfs = {
        p.name: struct.unpack_from(">h", data, 2 * p.address)[0]
        for p in points
        if p.type == "sunssf" and 2 * p.address + 2 <= len(data)
    }
    out: dict[str, float] = {}
    for p in points:
        at = 2 * p.address
        if not p.variable or p.variable in DERIVED or at + 2 * p.size > len(data):
            continue
        raw = _decoded(p, data[at : at + 2 * p.size], sfs)
        if raw is not None and math.isfinite(raw):
            out[p.variable] = raw / p.scale
    return out


def _decoded(p: Point, chunk: bytes, sfs: Mapping[str, int]) -> float | None:
    if p.type == "float32":
        return float(struct.unpack(">f", chunk)[0])
    if p.type == "int16":
        (word,) = struct.unpack(">H", chunk)
        if word == INT16_NA and p.value == "":
            return None
        sf = sfs.get(p.sf, 0) if p.sf else 0
        if sf == -32768:  # the scale factor itself is not implemented
            return None
        return float(struct.unpack(">h", chunk)[0]) * 10.0**sf
    if p.type == "uint16":
        (word,) = struct.unpack(">H", chunk)
        return None if word == UINT16_NA else float(word)
    if p.type == "acc32":
        sf = sfs.get(p.sf, 0) if p.sf else 0
        return float(struct.unpack(">I", chunk)[0]) * 10.0**sf
    if p.type == "int32_lw":
        low, high = struct.unpack(">HH", chunk)
        return float(struct.unpack(">i", struct.pack(">HH", high, low))[0])
    if p.type == "uint64":
        (value,) = struct.unpack(">Q", chunk)
        return None if value == UINT64_NA else float(value)
    return None
