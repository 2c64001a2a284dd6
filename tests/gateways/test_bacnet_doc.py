"""docs/bacnet.md ends with the tables the device serves from."""

from __future__ import annotations

from pathlib import Path

from emsbox.gateways.bacnet import doc

DOC = Path(__file__).resolve().parents[2] / "docs" / "bacnet.md"


def test_bacnet_doc_has_the_current_object_table():
    text = DOC.read_text(encoding="utf-8")
    assert text.endswith(doc.MARKER + "\n" + doc.as_markdown()), (
        "run: python -m emsbox.gateways.bacnet.doc docs/bacnet.md"
    )
