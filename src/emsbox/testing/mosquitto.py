"""A real Mosquitto broker for tests and benchmarks: its own configuration, an ephemeral port
on 127.0.0.1, started and stopped (or killed) on demand, its log kept in a file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO = "mosquitto"


def mosquitto_path() -> str | None:
    """The mosquitto binary (Debian installs it in /usr/sbin), or None."""
    return shutil.which(MOSQUITTO) or shutil.which(MOSQUITTO, path="/usr/sbin:/usr/local/sbin")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class BrokerTls:
    """TLS settings of the broker's listener."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    require_certificate: bool = False
    # The client certificate's common name becomes the user name (as cloud brokers use the
    # certificate as the identity).
    identity_as_username: bool = False


@dataclass
class Broker:
    """A Mosquitto broker in ``directory`` on ``port`` (0: a free one)."""

    directory: Path
    tls: BrokerTls | None = None
    password_file: Path | None = None
    port: int = 0
    # Keep retained messages and persistent sessions' queues across a restart (saved at stop).
    persistent: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        self.log_file = self.directory / "mosquitto.log"

    def _config(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"persistence {str(self.persistent).lower()}",
            f"persistence_location {self.directory}/",
            f"log_dest file {self.log_file}",
            "log_type all",
            "connection_messages true",
            "max_inflight_messages 0",
            "max_queued_messages 100000",
        ]
        if os.geteuid() == 0:
            # Run as root, mosquitto would switch to the user "mosquitto", who cannot read the
            # test's files (private keys are 0600).
            lines.append("user root")
        if self.password_file is not None:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.cert_file}",
                f"keyfile {self.tls.key_file}",
                "tls_version tlsv1.2",
                f"require_certificate {str(self.tls.require_certificate).lower()}",
            ]
            if self.tls.identity_as_username:
                lines.append("use_identity_as_username true")
        return "\n".join(lines) + "\n"

    def start(self, timeout_s: float = 10.0) -> Broker:
        """Start (or start again, on the same port) and wait until it accepts connections."""
        binary = mosquitto_path()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (scripts/test installs it)")
        conf = self.directory / "mosquitto.conf"
        conf.write_text(self._config(), encoding="utf-8")
        self.process = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "mosquitto.stderr").open("ab"),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    stderr = (self.directory / "mosquitto.stderr").read_text(errors="replace")
                    self.stop()
                    raise RuntimeError(f"mosquitto did not start: {stderr.strip()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the broker (SIGTERM); its clients see the connection close."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        """The broker's log so far."""
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def write_password_file(path: Path, users: dict[str, str]) -> Path:
    """A Mosquitto password file for ``users`` (name → password), made by mosquitto_passwd."""
    binary = shutil.which("mosquitto_passwd")
    if binary is None:
        raise RuntimeError("mosquitto_passwd is not installed (it comes with mosquitto)")
    path.write_text("", encoding="utf-8")
    for name, password in users.items():
        subprocess.run([binary, "-b", str(path), name, password], check=True)
    path.chmod(0o600)
    return path
