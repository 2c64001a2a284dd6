"""Wires a source of samples to the meter, and the meter's readings to the energy counters.

This is the only module that knows both sources and metering (they never know each other).
It serves ``emsbox analyze`` (a whole recording, offline) and the live loop of the service.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from emsbox.metering.aggregate import aggregate
from emsbox.metering.energy import EnergyCounters, default_start_threshold_w
from emsbox.metering.meter import Meter, meter_loads
from emsbox.metering.readings import WindowBatch
from emsbox.metering.window import cycles_per_window
from emsbox.samples import SampleBlock
from emsbox.sources.base import SampleSource, SourceError


@dataclass(frozen=True)
class LoadAnalysis:
    """What ``analyze`` reports for one load: aggregated values and integrated counters."""

    load: str
    windows: int
    values: dict[str, float]
    counters: dict[str, float]

    def as_dict(self) -> dict[str, float]:
        """Instantaneous aggregates and counters together, under their VARIABLES.md names."""
        return {**self.values, **self.counters}


def blocks_with_end(source: SampleSource, block_samples: int) -> Iterator[tuple[SampleBlock, bool]]:
    """Yield the source's blocks, each with a flag telling whether it is the last one."""
    current = source.read(block_samples)
    while current is not None:
        following = source.read(block_samples)
        yield current, following is None
        current = following


def analyze_recording(source: SampleSource, block_s: float = 1.0) -> list[LoadAnalysis]:
    """Measure a whole recording: aggregate every window and integrate energy over all of it.

    Energy covers the recording from its first to past its last sample: the half cycle before
    the first window and the rest after the last complete one are integrated with the values
    of the nearest window. Raises SourceError when no complete window fits in the recording.
    """
    rate = source.sample_rate_hz
    meter = Meter(meter_loads(source.loads, source.channels), rate)
    collected: dict[str, list[WindowBatch]] = {load.name: [] for load in source.loads}
    for block, last in blocks_with_end(source, max(1, int(block_s * rate))):
        for batch in meter.process(block, final=last):
            collected[batch.load].append(batch)
    total = meter.samples_received
    results = []
    for load in source.loads:
        batches = [b for b in collected[load.name] if b.n_windows]
        coverage = meter.coverage(load.name)
        if not batches or coverage is None:
            cycles = cycles_per_window(load.nominal_frequency_hz)
            need = (cycles + 1) / 45.0
            raise SourceError(
                f"recording too short: {total / rate:.3f} s holds no complete measurement "
                f"window ({cycles} cycles plus half a cycle each side: up to {need:.3f} s)"
            )
        values = aggregate(batches)
        threshold = default_start_threshold_w(load.wiring, values["v_ln_sys"])
        counters = EnergyCounters(load.wiring, threshold)
        first, last_bound = coverage
        counters.add_window(batches[0].window(0), first / rate, tariff=1)
        for b in batches:
            counters.integrate(b, tariff=1)
        counters.add_window(batches[-1].window(-1), (total - last_bound) / rate, tariff=1)
        n = sum(b.n_windows for b in batches)
        results.append(LoadAnalysis(load.name, n, values, counters.snapshot()))
    return results
