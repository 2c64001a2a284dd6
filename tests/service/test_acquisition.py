"""Live acquisition: readings per cycle, consistent sets, commands, counters across restarts."""

import itertools
import time

import numpy as np
import pytest

from emsbox.bus import Bus, Reading, WindowValues
from emsbox.loads import MeterConfig
from emsbox.service.acquisition import Command, CommandError, LiveAcquisition
from emsbox.service.sources import build_sources

START_S = 1_700_000_000.0


def _acquisition(tmp_path, bus, meter=None, interval_s=1.0):
    config = meter or MeterConfig()
    plans = build_sources(config, tmp_path, 0.0)
    assert len(plans) == 1
    return LiveAcquisition(
        plans[0],
        bus,
        tmp_path / "counters.sqlite3",
        interval_s,
        realtime=False,
        clock=lambda: START_S,
    )


def _collect(sub, n, timeout_s=60.0):
    out: list[Reading] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < deadline:
        m = sub.get(0.5)
        if isinstance(m, Reading):
            out.append(m)
    assert len(out) == n, f"only {len(out)} readings"
    return out


def test_one_reading_per_cycle_aligned_to_whole_seconds(tmp_path):
    bus = Bus()
    sub = bus.subscribe()
    acq = _acquisition(tmp_path, bus)
    acq.start()
    try:
        readings = _collect(sub, 6)
    finally:
        acq.stop()
    times = [r.timestamp_s for r in readings]
    assert all(t == int(t) for t in times)
    assert np.allclose(np.diff(times), 1.0)
    for r in readings[1:]:
        # About 5 windows of 10 cycles at 50 Hz in a second, covering it.
        assert 4 <= r.windows <= 6
        assert 0.8 < r.duration_s < 1.2
        assert r.load == "main"
        assert set(r.values) == set(r.minimum) == set(r.maximum)
        for name, value in r.values.items():
            if not name.startswith("pf"):
                assert r.minimum[name] - 1e-9 <= value <= r.maximum[name] + 1e-9, name
        assert 45 < r.values["freq"] < 55
        assert r.counters["hours_on"] > 0
    assert bus.latest("main") == readings[-1] or bus.latest("main").timestamp_s >= times[-1]
    # Counters only grow from one reading to the next.
    for a, b in itertools.pairwise(readings):
        assert b.counters["kwh_imp"] >= a.counters["kwh_imp"]
        assert b.counters["hours_on"] > a.counters["hours_on"]


def test_fast_subscribers_get_every_window(tmp_path):
    bus = Bus()
    fast = bus.subscribe(fast=True)
    acq = _acquisition(tmp_path, bus)
    acq.start()
    try:
        readings = _collect(fast, 3)
    finally:
        acq.stop()
    windows = [m for m in fast.drain() if isinstance(m, WindowValues)]
    assert windows and all("p_sys" in w.values for w in windows)
    assert readings[-1].windows >= 4


def test_partial_commands_are_applied_by_the_acquisition_thread(tmp_path):
    bus = Bus()
    sub = bus.subscribe()
    acq = _acquisition(tmp_path, bus)
    acq.start()
    try:
        _collect(sub, 2)
        stopped = acq.submit(Command("main", "stop", "test")).result(5)
        assert stopped["partial_running"] is False
        frozen = stopped["kvah_partial"]
        _collect(sub, 2)
        assert bus.latest("main").counters["kvah_partial"] == frozen
        reset = acq.submit(Command("main", "reset", "test")).result(5)
        assert reset["kvah_partial"] == 0.0 and reset["kvah"] > 0
        started = acq.submit(Command("main", "start", "test")).result(5)
        assert started["partial_running"] is True
        tariff = acq.submit(Command("main", "tariff", "test", tariff=2)).result(5)
        assert tariff["tariff"] == 2
        with pytest.raises(CommandError, match="no load named"):
            acq.submit(Command("nope", "reset", "test")).result(5)
        with pytest.raises(CommandError, match="tariff must be 1 or 2"):
            acq.submit(Command("main", "tariff", "test", tariff=3)).result(5)
    finally:
        acq.stop()
    with pytest.raises(CommandError, match="not running"):
        acq.submit(Command("main", "reset", "test")).result(5)


def test_counters_continue_across_a_restart(tmp_path):
    bus = Bus()
    sub = bus.subscribe()
    acq = _acquisition(tmp_path, bus)
    acq.start()
    try:
        last = _collect(sub, 3)[-1]
    finally:
        acq.stop()
    saved_hours = bus.latest("main").counters["hours_on"]
    bus2 = Bus()
    sub2 = bus2.subscribe()
    acq2 = _acquisition(tmp_path, bus2)
    acq2.start()
    try:
        first = _collect(sub2, 1)[0]
    finally:
        acq2.stop()
    assert first.counters["hours_on"] > saved_hours >= last.counters["hours_on"]
    assert first.counters["kvah"] > last.counters["kvah"]


def test_single_phase_split_and_extension_loads_publish_each(tmp_path):
    meter = MeterConfig.model_validate(
        {
            "main": {"as_single_phase_loads": True},
            "loads": [{"name": "hvac"}, {"name": "lift", "wiring": "3P3W", "module": "5A"}],
        }
    )
    bus = Bus()
    sub = bus.subscribe()
    acq = _acquisition(tmp_path, bus, meter)
    assert [ml.name for ml in acq.loads] == ["main_l1", "main_l2", "main_l3", "hvac", "lift"]
    acq.start()
    try:
        readings = _collect(sub, 15)
    finally:
        acq.stop()
    by_load = {r.load: r for r in readings}
    assert set(by_load) == {"main_l1", "main_l2", "main_l3", "hvac", "lift"}
    assert "v_l2" not in by_load["main_l1"].values
    assert by_load["lift"].wiring.value == "3P3W" and "v_l12" in by_load["lift"].values


def test_an_unusable_recording_is_reported(tmp_path):
    from emsbox.sources.base import SourceError

    meter = MeterConfig.model_validate(
        {"main": {"source": {"kind": "recording", "recording_file": "missing.csv"}}}
    )
    with pytest.raises(SourceError, match=r"missing\.csv"):
        build_sources(meter, tmp_path, 0.0)


def test_a_looped_recording_feeds_a_load(tmp_path):
    rate, f = 6400, 50.0
    t = np.arange(int(rate * 1.5)) / rate
    v = 230 * np.sqrt(2) * np.sin(2 * np.pi * f * t)
    i = 10 * np.sqrt(2) * np.sin(2 * np.pi * f * t - 0.3)
    rows = "\n".join(f"{a:.7f},{b:.6f},{c:.6f}" for a, b, c in zip(t, v, i, strict=True))
    (tmp_path / "rec.csv").write_text("t,v_l1,i_l1\n" + rows + "\n")
    meter = MeterConfig.model_validate(
        {
            "main": {
                "wiring": "1P2W",
                "source": {"kind": "recording", "recording_file": "rec.csv", "loop": True},
            }
        }
    )
    bus = Bus()
    sub = bus.subscribe()
    acq = _acquisition(tmp_path, bus, meter)
    acq.start()
    try:
        readings = _collect(sub, 4)  # more than the recording holds: it loops
    finally:
        acq.stop()
    last = readings[-1].values
    assert last["v_l1"] == pytest.approx(230.0, rel=1e-4)
    assert last["p_sys"] == pytest.approx(2300 * np.cos(0.3), rel=1e-4)


def test_readings_follow_a_clock_set_forward(tmp_path):
    # The clock is set an hour forward two seconds in, as NTP does at the boot of a device
    # without a battery-backed clock: readings then carry the clock's time, on whole seconds.
    began = time.monotonic()

    def clock() -> float:
        elapsed = time.monotonic() - began
        return START_S + elapsed + (3600.0 if elapsed > 2.0 else 0.0)

    plans = build_sources(MeterConfig(), tmp_path, 0.0)
    bus = Bus()
    sub = bus.subscribe()
    acq = LiveAcquisition(
        plans[0], bus, tmp_path / "counters.sqlite3", 1.0, realtime=True, clock=clock
    )
    acq.start()
    try:
        readings = _collect(sub, 5, timeout_s=30.0)
    finally:
        acq.stop()
    times = [r.timestamp_s for r in readings]
    assert all(t == int(t) for t in times)
    assert times[0] < START_S + 10 and times[-1] > START_S + 3600
    assert all(b > a for a, b in itertools.pairwise(times))
    # Energy goes on counting across the step, nothing counted twice or lost.
    for a, b in itertools.pairwise(readings):
        assert b.counters["hours_on"] > a.counters["hours_on"]
    assert sum(r.duration_s for r in readings[1:]) == pytest.approx(
        (readings[-1].counters["hours_on"] - readings[0].counters["hours_on"]) * 3600.0,
        rel=1e-6,
    )
