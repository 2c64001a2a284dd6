"""How tests and benchmarks start a real `emsbox run` and find the URL it serves."""

from __future__ import annotations

import sys
from pathlib import Path

URL_PREFIX = "web app and API: "


def run_command(data_dir: Path, *options: str) -> list[str]:
    """`emsbox run` in ``data_dir`` on 127.0.0.1 with an ephemeral HTTPS port, plus ``options``.

    ``options`` are further arguments, e.g. ``"--set", "web.http_port=0"``.
    """
    return [
        sys.executable,
        "-m",
        "emsbox",
        "run",
        "--data-dir",
        str(data_dir),
        "--set",
        "web.https_port=0",
        "--set",
        "web.bind_address=127.0.0.1",
        *options,
    ]


def served_url(line: str) -> str | None:
    """The HTTPS URL from the line `emsbox run` prints it on (else None), with 127.0.0.1."""
    if not line.startswith(URL_PREFIX):
        return None
    return line.removeprefix(URL_PREFIX).strip().replace("localhost", "127.0.0.1")
