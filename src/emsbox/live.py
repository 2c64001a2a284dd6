"""The live loop behind ``emsbox watch``: the meter alone on the simulator, printing readings.

It runs the same live acquisition as ``emsbox run`` (simulator → meter → counters, saved at
least every second, so a ``kill -9`` loses at most one second of energy) without the log or
the web server, prints the latest reading of every load at a fixed interval and stops
cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType

from emsbox.bus import Bus, Reading
from emsbox.config import default_data_dir
from emsbox.loads import ExtensionLoad, MeterConfig
from emsbox.service.acquisition import LiveAcquisition
from emsbox.service.sources import build_sources
from emsbox.sources.simulator import MAX_EXTENSION_LOADS, demo_extension_load

COUNTERS_FILE = "counters.sqlite3"


class _StopRequestedError(Exception):
    """Raised by the signal handler to leave the loop."""


def _meter_config(loads: int) -> MeterConfig:
    """The main load alone, or with the demo building's first extension loads."""
    n = max(0, min(loads, MAX_EXTENSION_LOADS + 1) - 1)
    return MeterConfig(loads=[ExtensionLoad(name=demo_extension_load(i).name) for i in range(n)])


def summary_line(reading: Reading) -> str:
    """One line with the main values of a load's latest reading and its energy totals."""
    v, c = reading.values, reading.counters
    phases = [p for p in ("l1", "l2", "l3") if f"i_{p}" in v]
    volts = "/".join(f"{v[f'v_{p}']:.1f}" for p in phases)
    amps = "/".join(f"{v[f'i_{p}']:.2f}" for p in phases)
    return (
        f"{reading.load:<12} V {volts} V  I {amps} A  P {v['p_sys'] / 1000:8.3f} kW  "
        f"Q {v['q_sys'] / 1000:7.3f} kvar  PF {v['pf_sys']:+.3f}  f {v['freq']:.3f} Hz  "
        f"THDv {v['thd_v_l1']:.1f} %  THDi {v['thd_i_l1']:.1f} %  "
        f"imp {c['kwh_imp']:.3f} kWh  exp {c['kwh_exp']:.3f} kWh"
    )


def watch(data_dir: Path | None, loads: int, seconds: float | None, interval_s: float) -> int:
    """Run the live meter until stopped (or for ``seconds``); return the exit status."""
    data_dir = data_dir or default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    (plan,) = build_sources(_meter_config(loads), data_dir, utc_offset_h=0.0)
    bus = Bus()
    acquisition = LiveAcquisition(plan, bus, data_dir / COUNTERS_FILE)
    print(
        f"emsbox watch: {len(acquisition.loads)} simulated load(s); counters in {data_dir}",
        flush=True,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _StopRequestedError

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = time.monotonic()
    try:
        acquisition.start()
        while seconds is None or time.monotonic() - started < seconds:
            time.sleep(interval_s)
            for reading in bus.latest_all().values():
                print(summary_line(reading), flush=True)
            if acquisition.last_error is not None:
                print(f"emsbox watch: {acquisition.last_error}", file=sys.stderr)
                return 1
    except _StopRequestedError:
        pass
    finally:
        acquisition.stop()  # saves the counters before it returns
    print("emsbox watch: stopped; counters saved", file=sys.stderr, flush=True)
    return 0
