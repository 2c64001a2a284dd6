"""The Home Assistant entity of every variable, as the table at the end of docs/mqtt.md.

Run ``python -m emsbox.gateways.mqtt.discovery_doc docs/mqtt.md`` after changing the table in
``discovery.py`` or the vocabulary; a test checks that the page is current.
"""

from __future__ import annotations

import sys
from pathlib import Path

from emsbox import variables
from emsbox.doc_marker import rewrite_after_marker
from emsbox.gateways.mqtt.discovery import entity_class

MARKER = "<!-- generated below by: python -m emsbox.gateways.mqtt.discovery_doc docs/mqtt.md -->\n"


def as_markdown() -> str:
    """One row per variable: its Home Assistant component, device and state class, unit."""
    lines = [
        "| variable | component | device_class | state_class | unit | precision |",
        "|---|---|---|---|---|---|",
    ]
    for var in variables.ALL:
        cls = entity_class(var.name)
        cells = [
            f"`{var.name}`",
            cls.component,
            cls.device_class or "",
            cls.state_class or "",
            cls.unit or "",
            "" if cls.precision is None else str(cls.precision),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def rewrite(path: Path) -> None:
    """Replace everything after the marker line of ``path`` with the current table."""
    rewrite_after_marker(path, MARKER, as_markdown())


if __name__ == "__main__":
    rewrite(Path(sys.argv[1]))
