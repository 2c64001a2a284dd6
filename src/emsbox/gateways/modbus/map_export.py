"""The register maps as users read them: absolute addresses, as CSV and as Markdown tables."""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from emsbox.doc_marker import rewrite_after_marker
from emsbox.gateways.modbus import image
from emsbox.gateways.modbus.commands import COMMAND_BASE
from emsbox.gateways.modbus.register_map import DERIVED, Point, table_size
from emsbox.variables import BY_NAME


@dataclass(frozen=True)
class Row:
    """One point of a map at its absolute address."""

    address: int  # 0-based, as on the wire
    name: str
    type: str
    size: int
    variable: str
    scale: float
    unit: str
    meaning: str

    @property
    def register(self) -> int:
        """The 1-based register number (mbpoll's ``-r``, many clients' "40001" style)."""
        return self.address + 1


# What the image fills in (see image.sunspec_block) where the table has no variable.
FILLED = {
    "Md": "emsbox and the load's wiring, e.g. 'emsbox 3P4W'",
    "Opt": "the load's name",
    "Vr": "the emsbox version",
    "SN": "the device's id and the unit id, e.g. '3d1219c7c4c5-1'",
    "DA": "the unit id",
    "timestamp_ms": "end of the reading's cycle, milliseconds since the Unix epoch",
    "Evt": "meter events: none (0)",
    "partial_command": (
        "partial counters: reads 1 while they count, else 0; write 1 to start, 2 to stop, "
        "3 to reset (with writes enabled)"
    ),
    "tariff_command": "the active tariff, 1 or 2; write 1 or 2 to select it (with writes enabled)",
    "output_command": (
        "the device's digital output, the same at every unit: reads 1 while it is on; write 1 "
        "to switch it on, 0 off (with writes enabled, when its function is remote)"
    ),
    "Phase sequence": "0: L1-L2-L3 (not measured)",
    "Version code": "the emsbox version: major and minor a nibble each, patch the low byte",
    "Revision code": "the same",
    "Firmware version": "the same",
    "Measuring system": "by wiring: 0 3P.n (3P4W, 3P4W-WL), 2 2P (2P3W), 3 1P (1P2W), 4 3P (3P3W)",
    "Measurement mode": "fixed: 1 (B, import and export)",
    "Serial number": "the device's id (5 characters) and the unit id (2 digits)",
    "Production year": "the current year",
    "Application": "fixed: 7 (application H)",
    "Front selector": "fixed: 3 (locked)",
    "Identification code": (
        "read alone: 1648 (EM24DINAV23XE1X, the EM24 Ethernet); read with 0x000A it is the "
        "high word of V L3-L1"
    ),
}


def _meaning(point: Point) -> str:
    if point.name in FILLED:
        return FILLED[point.name]
    if point.type == "sunssf":
        return "scale factor (power of ten) of its group, fixed by the load's rating"
    if point.variable in DERIVED:
        return DERIVED[point.variable][0]
    if point.variable in BY_NAME:
        return BY_NAME[point.variable].description
    if point.value:
        return f"fixed: {point.value}"
    return "not measured (not implemented)" if point.sf or point.unit else ""


def _rows(points: tuple[Point, ...], base: int) -> list[Row]:
    return [
        Row(base + p.address, p.name, p.type, p.size, p.variable, p.scale, p.unit, _meaning(p))
        for p in points
    ]


def _sunspec(meter: tuple[Point, ...], model_note: str) -> list[Row]:
    base = image.SUNSPEC_BASE
    common_at = base + 2
    meter_at = common_at + table_size(image.COMMON)
    end_at = meter_at + table_size(meter)
    return [
        Row(base, "SunS", "string:2", 2, "", 1.0, "", "SunSpec marker 0x53756E53"),
        *_rows(image.COMMON, common_at),
        *[
            row if row.name != "ID" else Row(**{**vars(row), "meaning": model_note})
            for row in _rows(meter, meter_at)
        ],
        Row(end_at, "end", "uint16", 2, "", 1.0, "", "end marker: model id 0xFFFF, length 0"),
    ]


MAPS: dict[str, tuple[str, list[Row]]] = {
    "native": ("Native map", _rows(image.NATIVE, image.NATIVE_BASE)),
    "sunspec-float": (
        "SunSpec, float models",
        _sunspec(image.METER_FLOAT, "211 (1P2W), 212 (2P3W), 213 (3P4W, 3P4W-WL), 214 (3P3W)"),
    ),
    "sunspec-int": (
        "SunSpec, integer models",
        _sunspec(image.METER_INT, "201 (1P2W), 202 (2P3W), 203 (3P4W, 3P4W-WL), 204 (3P3W)"),
    ),
    "commands": ("Command registers", _rows(image.COMMANDS, COMMAND_BASE)),
    "carlo-gavazzi": (
        "Carlo Gavazzi EM24 Ethernet / EM340 compatible",
        sorted(
            [
                *(r for start, points in image.CARLO_GAVAZZI for r in _rows(points, start)),
                Row(image.CG_IDENTIFICATION, "Identification code", "uint16", 1, "", 1.0, "", ""),
            ],
            key=lambda r: r.address,
        ),
    ),
}

COLUMNS = ("address", "register", "name", "type", "registers", "variable", "scale", "unit")


def _fields(row: Row) -> list[str]:
    scale = "" if row.scale == 1.0 else f"{row.scale:g}"
    return [
        str(row.address),
        str(row.register),
        row.name,
        row.type,
        str(row.size),
        row.variable,
        scale,
        row.unit,
        row.meaning,
    ]


def as_csv(name: str) -> str:
    """The map ``name`` (a key of MAPS) as CSV, one point per line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*COLUMNS, "meaning"])
    for row in MAPS[name][1]:
        writer.writerow(_fields(row))
    return out.getvalue()


def as_markdown() -> str:
    """Every map as a Markdown table, for docs/modbus.md."""
    parts = []
    for name, (title, rows) in MAPS.items():
        lines = [
            f"### {title} (`{name}.csv`)",
            "",
            "| " + " | ".join([*COLUMNS, "meaning"]) + " |",
            "|" + "---|" * (len(COLUMNS) + 1),
        ]
        lines += ["| " + " | ".join(f.replace("|", "\\|") for f in _fields(r)) + " |" for r in rows]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


MARKER = "<!-- generated below by: python -m emsbox.gateways.modbus.map_export docs/modbus.md -->\n"


def rewrite(path: Path) -> None:
    """Replace everything after the marker line of ``path`` with the current tables."""
    rewrite_after_marker(path, MARKER, as_markdown())


if __name__ == "__main__":
    rewrite(Path(sys.argv[1]))
