"""The vocabulary as a Markdown table, for docs/variables.md (kept in sync by a test)."""

from __future__ import annotations

from emsbox.variables import ALL


def variables_table() -> str:
    """A Markdown table of every variable: name, unit, kind and meaning."""
    lines = ["| name | unit | kind | meaning |", "|---|---|---|---|"]
    for v in ALL:
        lines.append(f"| `{v.name}` | {v.unit or '—'} | {v.kind.value} | {v.description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(variables_table(), end="")
