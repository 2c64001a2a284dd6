"""``emsbox watch``: the live meter as a real process, killed with SIGKILL and restarted."""

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from emsbox.metering.energy import CounterState
from emsbox.store.counters import CounterStore


def start(data_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "emsbox", "watch", "--data-dir", str(data_dir), "--loads", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_readings(proc: subprocess.Popen[str], timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("main "):
            return line
    raise AssertionError("no readings printed")


def stored(data_dir: Path) -> dict[str, CounterState]:
    store = CounterStore(data_dir / "counters.sqlite3", CounterState.from_json)
    try:
        return store.load_all()
    finally:
        store.close()


def test_kill_9_loses_at_most_a_second_and_never_rewinds(tmp_path):
    rng = random.Random(7)
    previous: dict[str, CounterState] = {}
    for _round in range(3):
        proc = start(tmp_path)
        try:
            line = wait_for_readings(proc)
            assert "kW" in line and "Hz" in line
            # Watch the stored state for a while: it must change at least every ~second.
            changes: list[float] = []
            last_seq = -1
            until = time.monotonic() + rng.uniform(2.5, 4.0)
            while time.monotonic() < until:
                states = stored(tmp_path)
                if "main" in states and states["main"].sequence != last_seq:
                    last_seq = states["main"].sequence
                    changes.append(time.monotonic())
                time.sleep(0.05)
            gaps = [b - a for a, b in itertools.pairwise(changes)]
            assert len(changes) >= 2
            assert max(gaps) < 1.3, gaps
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        # The file is intact, every load is there, and nothing went backwards.
        after = stored(tmp_path)
        assert set(after) == {"main", "hvac"}
        for name, state in after.items():
            assert state.sequence >= last_seq if name == "main" else True
            if name in previous:
                before = previous[name].counters()
                now = state.counters()
                assert state.sequence >= previous[name].sequence
                assert all(now[k] >= before[k] for k in before if not k.endswith("_partial"))
                assert now["kwh_imp"] + now["kwh_exp"] > before["kwh_imp"] + before["kwh_exp"]
        previous = after


def test_sigterm_saves_and_exits_cleanly(tmp_path):
    proc = start(tmp_path)
    wait_for_readings(proc)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "counters saved" in err
    states = stored(tmp_path)
    assert states["main"].counters()["hours_on"] > 0.0
