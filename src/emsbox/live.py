"""The live loop behind ``emsbox watch``: simulator → meter → counters, saved every second.

It paces the simulator in real time, prints the latest readings of every load at a fixed
interval, keeps the energy counters in the data directory (saved at least every second, so a
``kill -9`` loses at most one second of energy) and stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType

from platformdirs import user_data_dir

from emsbox.metering.energy import CounterState, EnergyCounters, default_start_threshold_w
from emsbox.metering.meter import Meter, meter_loads
from emsbox.metering.readings import WindowBatch
from emsbox.sources.simulator import (
    Simulator,
    SimulatorConfig,
    default_config,
    demo_building_config,
)
from emsbox.store.counters import CounterSaver, CounterStore

BLOCK_S = 0.2
SAVE_INTERVAL_S = 0.75


class _StopRequestedError(Exception):
    """Raised by the signal handler to leave the loop."""


def default_data_dir() -> Path:
    """The per-user data directory (e.g. ``~/.local/share/emsbox``)."""
    return Path(user_data_dir("emsbox", appauthor=False))


def _simulator_config(loads: int) -> SimulatorConfig:
    return default_config() if loads <= 1 else demo_building_config(min(loads, 11) - 1)


def summary_line(batch: WindowBatch, counters: dict[str, float]) -> str:
    """One line with the main values of a load's latest window and its energy totals."""
    v = batch.window(-1)
    phases = [p for p in ("l1", "l2", "l3") if f"i_{p}" in v]
    volts = "/".join(f"{v[f'v_{p}']:.1f}" for p in phases)
    amps = "/".join(f"{v[f'i_{p}']:.2f}" for p in phases)
    return (
        f"{batch.load:<12} V {volts} V  I {amps} A  P {v['p_sys'] / 1000:8.3f} kW  "
        f"Q {v['q_sys'] / 1000:7.3f} kvar  PF {v['pf_sys']:+.3f}  f {v['freq']:.3f} Hz  "
        f"THDv {v['thd_v_l1']:.1f} %  THDi {v['thd_i_l1']:.1f} %  "
        f"imp {counters['kwh_imp']:.3f} kWh  exp {counters['kwh_exp']:.3f} kWh"
    )


def watch(data_dir: Path | None, loads: int, seconds: float | None, interval_s: float) -> int:
    """Run the live meter until stopped (or for ``seconds``); return the exit status."""
    data_dir = data_dir or default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    source = Simulator(_simulator_config(loads))
    meter = Meter(meter_loads(source.loads, source.channels), source.sample_rate_hz)
    store = CounterStore(data_dir / "counters.sqlite3", CounterState.from_json)
    counters: dict[str, EnergyCounters] = {}
    for load in source.loads:
        saved = store.load(load.name)
        # Until the first window, the threshold assumes the simulator's nominal 230 V L-N.
        threshold = default_start_threshold_w(load.wiring, 230.0)
        counters[load.name] = (
            EnergyCounters.from_state(saved, threshold)
            if saved is not None
            else EnergyCounters(load.wiring, threshold)
        )
    # Saved at least every second: the saver waits ≥ SAVE_INTERVAL_S between saves and is
    # asked after every block, so the gap is at most SAVE_INTERVAL_S + BLOCK_S.
    saver = CounterSaver(store, interval_s=SAVE_INTERVAL_S)
    print(
        f"emsbox watch: {len(source.loads)} simulated load(s); counters in {data_dir}", flush=True
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _StopRequestedError

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    block = int(BLOCK_S * source.sample_rate_hz)
    started = time.monotonic()
    next_print = started + interval_s
    latest: dict[str, WindowBatch] = {}
    received = 0
    try:
        while seconds is None or received / source.sample_rate_hz < seconds:
            samples = source.read(block)
            if samples is None:
                break
            received += samples.n_samples
            for batch in meter.process(samples):
                if batch.n_windows:
                    counters[batch.load].integrate(batch, tariff=1)
                    latest[batch.load] = batch
            now = time.monotonic()
            saver.maybe_save({k: c.state() for k, c in counters.items()}, now)
            if now >= next_print and latest:
                for name, batch in latest.items():
                    print(summary_line(batch, counters[name].snapshot()), flush=True)
                next_print += interval_s
            # Pace the simulator in real time.
            ahead = started + received / source.sample_rate_hz - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    except _StopRequestedError:
        pass
    finally:
        saver.flush({k: c.state() for k, c in counters.items()})
        store.close()
    print("emsbox watch: stopped; counters saved", file=sys.stderr, flush=True)
    return 0
