"""Start an `emsbox run` process in a fresh data directory for the service benchmarks."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emsbox.testing.service_run import run_command, served_url

EXTENSIONS = [
    "hvac",
    "lighting",
    "ev_charger",
    "kitchen",
    "pumps",
    "it_room",
    "lift",
    "office_1",
    "office_2",
    "outdoor",
]


def emsbox(data_dir: Path, *args: str, stdin: str | None = None) -> str:
    """Run an emsbox command against ``data_dir`` and return its standard output."""
    result = subprocess.run(
        [sys.executable, "-m", "emsbox", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def load_overrides(extension_loads: int) -> list[str]:
    """``--set`` arguments adding extension loads of the demo building."""
    names = ", ".join(f'{{name = "{n}"}}' for n in EXTENSIONS[:extension_loads])
    return ["--set", f"meter.loads=[{names}]"] if extension_loads else []


class ServiceProcess:
    """`emsbox run` on 127.0.0.1 with any free port, a viewer token and the URL it printed."""

    def __init__(self, extension_loads: int = 10, data_dir: Path | None = None) -> None:
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="emsbox-bench-"))
        if not (self.data_dir / "users.sqlite3").exists():
            emsbox(
                self.data_dir, "user", "add", "bench", "--role", "admin", stdin="bench password 1\n"
            )
        self.token = emsbox(
            self.data_dir, "token", "create", f"bench-{time.time_ns()}", "--role", "viewer"
        )
        self.proc = subprocess.Popen(
            run_command(
                self.data_dir,
                "--set",
                "web.http_redirect=false",
                *load_overrides(extension_loads),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # kill_group() imitates a power cut
        )
        self.url = ""
        while not self.url:
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            if not line and self.proc.poll() is not None:
                raise RuntimeError("emsbox run exited")
            self.url = served_url(line) or ""
        cert = next(p for p in (self.data_dir / "tls").iterdir() if "key" not in p.name)
        self.ssl = ssl.create_default_context(cafile=str(cert))
        self.ssl.check_hostname = False

    def rss_mb(self) -> float:
        """Resident memory of the service's processes added up, in MB (shared pages twice)."""
        total = 0
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total / 1024

    def pids(self) -> list[int]:
        """The service process and its children (the acquisition process)."""
        tasks = Path(f"/proc/{self.proc.pid}/task").iterdir()
        children = [int(c) for t in tasks for c in (t / "children").read_text().split()]
        return [self.proc.pid, *children]

    def pss_mb(self) -> float:
        """Proportional set size of the service's processes together, in MB.

        Unlike the sum of their RSS this counts pages the processes share (the Python and
        numpy libraries) once, so it is the memory the service really takes.
        """
        total = 0
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        return total / 1024

    def cpu_s(self) -> float:
        """CPU seconds the service's processes have used."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / tick

    def kill_group(self) -> None:
        """SIGKILL the service and its acquisition process at once, as a power cut would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.proc.terminate()
        self.proc.wait(30)
