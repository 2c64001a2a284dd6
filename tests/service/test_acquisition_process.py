"""Acquisition in its own process: readings, fast windows and commands across the pipe,
refused sources, a child that dies, and counters saved when it stops."""

import os
import signal
import time

import pytest

from emsbox.bus import Bus, Reading, WindowValues
from emsbox.loads import MeterConfig
from emsbox.metering.energy import CounterState
from emsbox.service.acquisition import Command, CommandError, CommandExpiredError
from emsbox.service.acquisition_process import AcquisitionProcess, AcquisitionSpec
from emsbox.sources.base import SourceError
from emsbox.store.counters import CounterStore


def _spec(tmp_path, meter=None):
    meter = meter or MeterConfig.model_validate({"loads": [{"name": "hvac"}]})
    return AcquisitionSpec(meter, tmp_path, tmp_path / "counters.sqlite3", 0.0)


def _next(sub, kind, load=None, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = sub.get(0.5)
        if isinstance(m, kind) and (load is None or m.load == load):
            return m
    raise AssertionError(f"no {kind.__name__} within {timeout_s} s")


@pytest.fixture
def running(tmp_path):
    bus = Bus()
    process = AcquisitionProcess(_spec(tmp_path), bus)
    sources = process.start()
    try:
        yield bus, process, sources
    finally:
        process.stop()


def test_readings_of_every_load_reach_the_service_bus(running):
    bus, _process, sources = running
    sub = bus.subscribe()
    seen = {_next(sub, Reading).load for _ in range(6)}
    assert seen == {"main", "hvac"}
    [source] = sources
    assert {ml.name for ml in source.loads} == {"main", "hvac"}
    assert source.healthy() and source.readings >= 2 and source.last_error is None
    reading = bus.latest("main")
    assert reading is not None and reading.values["v_l1"] == pytest.approx(230.0, rel=0.05)


def test_fast_windows_flow_only_while_someone_subscribes(running):
    bus, _process, _sources = running
    fast = bus.subscribe(fast=True)
    window = _next(fast, WindowValues, "main")
    assert 0.15 < window.duration_s < 0.25 and "p_sys" in window.values
    bus.unsubscribe(fast)
    time.sleep(1.0)  # the child hears that nobody wants them any more
    slow = bus.subscribe()
    time.sleep(1.5)
    assert not any(isinstance(m, WindowValues) for m in slow.drain())


def test_commands_come_back_with_the_new_counters(running):
    _bus, _process, [source] = running
    stopped = source.submit(Command("main", "stop", "tester")).result(10)
    assert stopped["partial_running"] is False
    started = source.submit(Command("main", "start", "tester")).result(10)
    assert started["partial_running"] is True
    with pytest.raises(CommandError, match="no load named"):
        source.submit(Command("nowhere", "stop", "tester")).result(10)


def test_a_command_past_its_deadline_is_refused_not_applied(running):
    _bus, _process, [source] = running
    late = Command("main", "stop", "tester", deadline_s=time.monotonic() - 1.0)
    with pytest.raises(CommandExpiredError):
        source.submit(late).result(10)
    after = source.submit(Command("main", "tariff", "tester", tariff=1)).result(10)
    assert after["partial_running"] is True


def test_a_source_that_cannot_open_is_refused_at_start(tmp_path):
    meter = MeterConfig.model_validate(
        {"main": {"source": {"kind": "recording", "recording_file": "missing.csv"}}}
    )
    process = AcquisitionProcess(_spec(tmp_path, meter), Bus())
    with pytest.raises(SourceError, match=r"missing\.csv"):
        process.start()
    assert not process.alive()


def test_a_second_process_on_the_same_counters_is_refused(running, tmp_path):
    spec = _spec(tmp_path)
    second = AcquisitionProcess(spec.__class__(**{**spec.__dict__, "lock_wait_s": 0.5}), Bus())
    with pytest.raises(SourceError, match="another emsbox process is measuring"):
        second.start()


def test_a_child_that_dies_is_reported_and_commands_fail_cleanly(running):
    bus, process, [source] = running
    _next(bus.subscribe(), Reading)
    assert process._proc is not None
    os.kill(process._proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while source.last_error is None:
        assert time.monotonic() < deadline, "the death of the child went unnoticed"
        time.sleep(0.05)
    assert "acquisition process ended" in source.last_error and "-9" in source.last_error
    assert not source.healthy()
    with pytest.raises(CommandError, match="not running"):
        source.submit(Command("main", "stop", "tester")).result(10)


def test_stopping_saves_the_counters_of_the_last_reading(tmp_path):
    bus = Bus()
    sub = bus.subscribe()
    process = AcquisitionProcess(_spec(tmp_path), bus)
    process.start()
    try:
        _next(sub, Reading, "main")
        time.sleep(1.5)
    finally:
        process.stop()
    last = [m for m in sub.drain() if isinstance(m, Reading) and m.load == "main"][-1]
    store = CounterStore(tmp_path / "counters.sqlite3", CounterState.from_json)
    try:
        saved = store.load("main")
    finally:
        store.close()
    assert saved is not None
    # The counters saved on stop include everything the last published reading counted.
    counters = saved.counters()
    assert counters["hours_on"] >= last.counters["hours_on"]
    assert counters["kvah"] >= last.counters["kvah"] > 0
