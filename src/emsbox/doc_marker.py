"""Documentation pages that end in generated tables, below a marker line."""

from __future__ import annotations

from pathlib import Path


def rewrite_after_marker(path: Path, marker: str, generated: str) -> None:
    """Replace everything after ``marker`` in ``path`` with ``generated``."""
    head, found, _ = path.read_text(encoding="utf-8").partition(marker)
    if not found:
        raise SystemExit(f"{path}: marker line not found")
    path.write_text(head + marker + "\n" + generated, encoding="utf-8")
