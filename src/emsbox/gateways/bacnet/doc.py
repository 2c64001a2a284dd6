"""The object list and the PICS-style summary of docs/bacnet.md, generated from the tables
the device serves from.

    python -m emsbox.gateways.bacnet.doc docs/bacnet.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from emsbox.doc_marker import rewrite_after_marker
from emsbox.gateways.bacnet.database import OPTIONAL_PROPERTIES, PROPERTIES, properties_of
from emsbox.gateways.bacnet.identifiers import (
    OBJECT_TYPE_NAMES,
    SERVICES_EXECUTED_BITS,
    EngineeringUnits,
    ObjectType,
    PropertyId,
)
from emsbox.gateways.bacnet.objects import (
    DIGITAL_INPUT,
    DIGITAL_OUTPUT,
    LOAD_STRIDE,
    load_objects,
    unit_key,
)
from emsbox.variables import ALL, Kind

MARKER = "<!-- generated below by: python -m emsbox.gateways.bacnet.doc docs/bacnet.md -->\n"


def _words(name: str) -> str:
    """A clause 21 identifier as BACnet tools print it: ``present-value``."""
    return name.lower().replace("_", "-")


def _property_name(prop: PropertyId) -> str:
    """A property as the standard spells it: ``presentValue``."""
    head, *rest = prop.name.lower().split("_")
    return head + "".join(part.capitalize() for part in rest)


def services_table() -> str:
    """The services the device executes and initiates (its BIBBs' services)."""
    rows = [
        "| service | executes | initiates |",
        "|---|---|---|",
    ]
    executed = set(SERVICES_EXECUTED_BITS)
    for name, initiates in (
        ("who-Is", False),
        ("i-Am", True),
        ("who-Has", False),
        ("i-Have", True),
        ("readProperty", False),
        ("readPropertyMultiple", False),
        ("writeProperty", False),
        ("writePropertyMultiple", False),
        ("subscribeCOV", False),
        ("confirmedCOVNotification", True),
        ("unconfirmedCOVNotification", True),
        ("deviceCommunicationControl", False),
        ("reinitializeDevice", False),
    ):
        rows.append(
            f"| {name} | {'yes' if name in executed else ''} | {'yes' if initiates else ''} |"
        )
    return "\n".join(rows) + "\n"


def properties_table() -> str:
    """Every object type's properties; (o) marks the optional ones, W the writable one."""
    rows = ["| object type | properties |", "|---|---|"]
    for kind in PROPERTIES:
        names = []
        for prop in properties_of(kind):
            name = _property_name(prop)
            if prop in OPTIONAL_PROPERTIES[kind]:
                name += " (o)"
            if kind == ObjectType.BINARY_OUTPUT and prop == PropertyId.PRESENT_VALUE:
                name += " (W when commandable)"
            names.append(name)
        rows.append(f"| {OBJECT_TYPE_NAMES[kind]} | {', '.join(names)} |")
    return "\n".join(rows) + "\n"


def objects_table() -> str:
    """The objects of a load, ``k`` being the load's place in the configuration (1, 2, …)."""
    rows = [
        "| instance | object type | name | units | COV increment | description |",
        "|---|---|---|---|---|---|",
    ]
    for index, spec in enumerate(load_objects(1, "<load>")):
        units = "" if spec.units is None else _words(EngineeringUnits(spec.units).name)
        increment = "any change" if spec.cov_increment is None else f"{spec.cov_increment:g}"
        what = ALL[index].description
        rows.append(
            f"| k·{LOAD_STRIDE} + {index} | {OBJECT_TYPE_NAMES[spec.type]} "
            f"| `{spec.name}` | {units} | {increment} | {what} |"
        )
    for spec in (DIGITAL_INPUT, DIGITAL_OUTPUT):
        rows.append(
            f"| {spec.instance} | {OBJECT_TYPE_NAMES[spec.type]} | `{spec.name}` | | any change "
            f"| {spec.description} |"
        )
    return "\n".join(rows) + "\n"


def unit_keys() -> str:
    """The unit keys cov_increments takes, with the units they stand for."""
    keys = sorted({unit_key(v) for v in ALL if v.kind is not Kind.STATE})
    return ", ".join(f"`{k}`" for k in keys)


def as_markdown() -> str:
    """The generated part of docs/bacnet.md."""
    return (
        "### Services (PICS summary)\n\n"
        + services_table()
        + "\nEvery other confirmed service is rejected with `unrecognized-service`; other "
        "unconfirmed services are ignored, as the standard wants (5.4.1).\n\n"
        "### Object types and their properties\n\n"
        "(o): optional in the standard. Every property is read-only but the binary output's "
        "presentValue when `output_commandable` is on.\n\n"
        + properties_table()
        + "\n### The objects of a load\n\n"
        f"Keys for `cov_increments` by unit: {unit_keys()}.\n\n" + objects_table()
    )


def rewrite(path: Path) -> None:
    """Rewrite the generated part of ``path``."""
    rewrite_after_marker(path, MARKER, as_markdown())


if __name__ == "__main__":
    rewrite(Path(sys.argv[1]))
