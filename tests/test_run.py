"""``emsbox run`` end to end: a real process, HTTPS with its own certificate, the redirect,
users and tokens from the command line, clean stops, restarts and kill -9."""

import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from emsbox.runner import MODBUS_PREFIX
from emsbox.testing.service_run import run_command, served_url

PASSWORD = "a long enough password"


def emsbox(*args, data_dir, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "emsbox", *args, "--data-dir", str(data_dir)],
        input=stdin,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


class Running:
    """An `emsbox run` process and the URLs it printed."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            run_command(data_dir, "--set", "web.http_port=0", *extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # so that a power cut can be imitated: kill the group
        )
        self.lines: list[str] = []
        self.url = self.redirect = ""
        deadline = time.monotonic() + 60
        while not self.url:
            assert time.monotonic() < deadline, "no URL printed"
            line = self.proc.stdout.readline()
            assert line or self.proc.poll() is None, self.proc.stderr.read()
            self.lines.append(line)
            if line.startswith("plain HTTP"):
                self.redirect = line.split(": ", 1)[1].strip().replace("localhost", "127.0.0.1")
            self.url = served_url(line) or ""
        cert = next((data_dir / "tls").glob("*.crt*"), None) or next(
            (data_dir / "tls").glob("*cert*")
        )
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False  # the URL uses 127.0.0.1, also in the certificate
        self.client = httpx.Client(base_url=self.url, verify=context, timeout=10)

    def wait_for_reading(self, token, load="main"):
        deadline = time.monotonic() + 30
        while True:
            r = self.client.get(
                f"/api/v1/loads/{load}/now", headers={"Authorization": f"Bearer {token}"}
            )
            if r.status_code == 200:
                return r.json()
            assert time.monotonic() < deadline, r.text
            time.sleep(0.2)

    def stop(self, sig=signal.SIGTERM, group=False):
        """Send ``sig`` to the service (or to its whole process group, as a service manager
        does); its exit code and standard error."""
        self.client.close()
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    r = emsbox("user", "add", "ada", "--role", "admin", data_dir=d, stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    return d


def _token(data_dir, role="viewer"):
    r = emsbox(
        "token", "create", f"t-{role}-{time.monotonic_ns()}", "--role", role, data_dir=data_dir
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_run_serves_https_with_users_and_tokens_from_the_cli(data_dir):
    token = _token(data_dir)
    run = Running(data_dir)
    try:
        assert run.url.startswith("https://")
        assert run.client.get("/api/v1/health").json()["status"] in ("ok", "degraded")
        assert run.client.get("/api/v1/loads").status_code == 401
        now = run.wait_for_reading(token)
        assert 200 < now["values"]["v_l1"] < 260
        login = run.client.post("/api/v1/login", json={"name": "ada", "password": PASSWORD})
        assert login.status_code == 200 and "Secure" in login.headers["set-cookie"]
        # The plain HTTP port only redirects, keeping path and query.
        r = httpx.get(run.redirect + "api/v1/loads?x=1", follow_redirects=False)
        assert r.status_code == 308
        port = run.url.rsplit(":", 1)[1].strip("/")
        assert r.headers["location"] == f"https://127.0.0.1:{port}/api/v1/loads?x=1"
        # Plain HTTP on the HTTPS port is not served.
        with pytest.raises(httpx.HTTPError):
            httpx.get(run.url.replace("https", "http") + "api/v1/health", timeout=5)
    finally:
        code, err = run.stop()
    assert code == 0, err
    assert "counters saved" in err
    key = next((data_dir / "tls").glob("*key*"))
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_settings_saved_while_running_never_write_this_runs_overrides(data_dir):
    run = Running(data_dir, "--set", "store.logging_interval_s=900")
    try:
        assert run.client.post("/api/v1/login", json={"name": "ada", "password": PASSWORD})
        config = run.client.get("/api/v1/config").json()
        # The settings show the file, not the overrides of this run.
        assert config["store"]["logging_interval_s"] == 60 and config["web"]["http_port"] == 8080
        config["site"]["name"] = "Renamed"
        r = run.client.put("/api/v1/config", json=config)
        assert r.status_code == 200 and r.json()["restart_required"] is False, r.text
    finally:
        code, err = run.stop()
    assert code == 0, err
    saved = (data_dir / "config.toml").read_text()
    assert 'name = "Renamed"' in saved
    assert "http_port = 0" not in saved and "logging_interval_s = 900" not in saved


def test_sigterm_to_the_whole_group_stops_cleanly_without_alarm(data_dir):
    run = Running(data_dir)
    run.wait_for_reading(_token(data_dir))
    code, err = run.stop(group=True)  # systemd's default stop, or `timeout`
    assert code == 0, err
    assert "counters saved" in err and "ERROR" not in err, err


def test_counters_continue_across_restart_and_kill_9(data_dir):
    token = _token(data_dir)
    run = Running(data_dir)
    first = run.wait_for_reading(token)["values"]
    time.sleep(2)
    code, err = run.stop()
    assert code == 0, err
    run = Running(data_dir)
    second = run.wait_for_reading(token)["values"]
    assert second["hours_on"] > first["hours_on"]
    time.sleep(2.5)
    before_kill = run.wait_for_reading(token)["values"]
    run.client.close()
    os.killpg(run.proc.pid, signal.SIGKILL)  # the service and its acquisition process at once
    run.proc.wait(10)
    db = sqlite3.connect(data_dir / "log.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    run = Running(data_dir)
    after = run.wait_for_reading(token)["values"]
    code, err = run.stop()
    assert code == 0, err
    # At most about a second of counting is lost to kill -9, and nothing goes backwards.
    assert after["hours_on"] >= before_kill["hours_on"] - 1.5 / 3600
    assert after["kvah"] >= before_kill["kvah"] * 0.999


def _children(pid: int) -> set[int]:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return {int(c) for t in tasks for c in (t / "children").read_text().split()}


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_the_acquisition_process_saves_and_ends_when_the_service_is_killed(data_dir):
    token = _token(data_dir)
    run = Running(data_dir)
    before_kill = run.wait_for_reading(token)["values"]
    acquisition = _children(run.proc.pid)
    assert len(acquisition) == 1
    run.client.close()
    run.proc.kill()  # the service alone: its acquisition process must not be left behind
    run.proc.wait(10)
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in acquisition):
        assert time.monotonic() < deadline, "the acquisition process outlived the service"
        time.sleep(0.1)
    run = Running(data_dir)
    after = run.wait_for_reading(token)["values"]
    code, err = run.stop()
    assert code == 0, err
    # It saved its counters as it ended: nothing counted before the kill is missing.
    assert after["hours_on"] >= before_kill["hours_on"]
    assert after["kvah"] >= before_kill["kvah"]


def test_invalid_configuration_is_refused_or_falls_back_to_the_last_valid_one(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "config.toml").write_text('[meter.main]\nwiring = "3P5W"\n')
    r = subprocess.run(
        [sys.executable, "-m", "emsbox", "run", "--data-dir", str(d)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "meter.main.wiring: Input should be" in r.stderr
    (d / "config.toml.bak").write_text('[site]\nname = "Last good"\n')
    run = Running(d)
    try:
        assert any("site 'Last good'" in line for line in run.lines)
    finally:
        code, err = run.stop()
    assert "running with the previous valid one" in err
    assert code == 0
    assert "3P5W" in (d / "config.toml").read_text()  # the user's file is left as it was
    # A valid file that cannot run (its recording is gone) also falls back to the last one.
    (d / "config.toml").write_text(
        '[meter.main.source]\nkind = "recording"\nrecording_file = "gone.csv"\n'
    )
    run = Running(d)
    code, err = run.stop()
    assert "gone.csv" in err and "running with the previous configuration" in err
    assert code == 0


MODBUS_ON = ("--set", "modbus.tcp_enabled=true", "--set", "modbus.bind_address=127.0.0.1")


def test_run_serves_modbus_when_enabled_and_runs_on_when_its_port_is_taken(data_dir):
    token = _token(data_dir)
    run = Running(data_dir, *MODBUS_ON, "--set", "modbus.tcp_port=0")
    try:
        (line,) = [x for x in run.lines if x.startswith(MODBUS_PREFIX)]
        port = int(line.rsplit(":", 1)[1])
        run.wait_for_reading(token)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"\x00\x01\x00\x00\x00\x06\x01\x03\x9c\x40\x00\x02")
            assert sock.recv(64) == b"\x00\x01\x00\x00\x00\x07\x01\x03\x04SunS"
    finally:
        code, err = run.stop()
    assert code == 0, err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        run = Running(data_dir, *MODBUS_ON, "--set", f"modbus.tcp_port={busy}")
        try:
            # The meter and the web app run; the health says what does not.
            run.wait_for_reading(token)
            assert not any(x.startswith(MODBUS_PREFIX) for x in run.lines)
            assert run.client.get("/api/v1/health").json()["status"] == "degraded"
            system = run.client.get(
                "/api/v1/system", headers={"Authorization": f"Bearer {token}"}
            ).json()
            modbus = system["gateways"][0]
            assert modbus["name"] == "Modbus TCP" and modbus["enabled"] and not modbus["healthy"]
            assert f"cannot listen on 127.0.0.1:{busy}" in modbus["detail"]
        finally:
            code, err = run.stop()
        assert code == 0, err
        assert f"modbus: cannot listen on 127.0.0.1:{busy}" in err
