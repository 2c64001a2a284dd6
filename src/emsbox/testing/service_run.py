"""How tests and benchmarks start a real `emsbox run` and find the URL it serves."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
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


class ServedProcess:
    """A real `emsbox run` on 127.0.0.1 with ephemeral ports, started in ``data_dir``.

    Output goes to files beside ``data_dir``, not pipes, so a long-lived server never blocks
    on a full pipe. Raises RuntimeError, with the server's standard error, when it exits or
    prints no URL within ``start_deadline_s``.
    """

    def __init__(self, data_dir: Path, *options: str, start_deadline_s: float = 60.0) -> None:
        self.data_dir = data_dir
        self.url = ""
        self.stdout_file = data_dir.with_name(data_dir.name + ".stdout")
        self.stderr_file = data_dir.with_name(data_dir.name + ".stderr")
        with self.stdout_file.open("w") as out, self.stderr_file.open("w") as err:
            self.proc = subprocess.Popen(
                run_command(data_dir, "--set", "web.http_port=0", *options),
                stdout=out,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        deadline = time.monotonic() + start_deadline_s
        while not self.url:
            urls = (served_url(line) for line in self.stdout().splitlines())
            self.url = next((url for url in urls if url), "")
            if self.url:
                break
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"emsbox run exited with {self.proc.returncode} before printing its URL;"
                    f" stderr:\n{self.stderr()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"emsbox run printed no URL within {start_deadline_s:g} s;"
                    f" stderr:\n{self.stderr()}"
                )
            time.sleep(0.1)

    def stdout(self) -> str:
        """Everything the server printed on stdout so far."""
        return self.stdout_file.read_text()

    def stderr(self) -> str:
        """Everything the server printed on stderr so far."""
        return self.stderr_file.read_text()

    def stop(self) -> int:
        """Stop the server as a service manager would (SIGTERM) and return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)
