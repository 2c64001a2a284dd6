"""Benchmarks behind ``emsbox bench``: they measure and print numbers, never assert."""

from __future__ import annotations

import os
import resource
import time

from emsbox.metering.meter import Meter, meter_loads
from emsbox.sources.simulator import Simulator, demo_building_config


def _rss_mib() -> float:
    """Resident memory of this process now, in MiB (Linux /proc)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_metering(loads: int, sample_rate_hz: float, seconds: float, block_s: float) -> int:
    """Feed simulated blocks of ``loads`` three-phase loads to the meter; print its speed.

    Only the meter's work is timed (process CPU time, pinned to one core), not the
    simulator's. Memory is sampled after the first tenth of the run and at its end: a meter
    that keeps nothing per window shows no growth.
    """
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cfg = demo_building_config(max(0, loads - 1)).model_copy(
        update={"sample_rate_hz": sample_rate_hz, "start_s": 1_700_000_000.0}
    )
    source = Simulator(cfg)
    meter = Meter(meter_loads(source.loads, source.channels), sample_rate_hz)
    block = max(1, int(block_s * sample_rate_hz))
    n_blocks = max(1, int(seconds * sample_rate_hz) // block)
    cpu = 0.0
    windows = 0
    rss_early = rss_end = _rss_mib()
    for i in range(n_blocks):
        samples = source.read(block)
        assert samples is not None
        start = time.process_time()
        batches = meter.process(samples)
        cpu += time.process_time() - start
        windows += sum(b.n_windows for b in batches)
        if i == n_blocks // 10:
            rss_early = _rss_mib()
    rss_end = _rss_mib()
    signal_s = n_blocks * block / sample_rate_hz
    channels = len(source.channels)
    print(
        f"metering benchmark: {loads} loads, {channels} channels at {sample_rate_hz:g} S/s, "
        f"{signal_s:g} s of signal in blocks of {block / sample_rate_hz:g} s"
    )
    print(f"  windows measured      {windows}")
    print(f"  CPU time              {cpu:.3f} s (one core)")
    print(f"  throughput            {signal_s / cpu:.1f} x real time")
    print(f"  CPU share, real time  {100.0 * cpu / signal_s:.3f} % of one core")
    print(
        f"  memory                {rss_early:.1f} MiB after 10 %, {rss_end:.1f} MiB at the end "
        f"(growth {rss_end - rss_early:+.1f} MiB)"
    )
    return 0
