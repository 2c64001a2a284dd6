"""The sources of the configured loads: one simulator for every simulated load, one per file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emsbox.loads import ExtensionModule, MeterConfig, SourceKind, SourceSettings
from emsbox.samples import Wiring
from emsbox.sources.base import SampleSource
from emsbox.sources.recording import open_recording
from emsbox.sources.simulator import (
    CtType,
    SimulatedLoad,
    Simulator,
    SimulatorConfig,
    demo_extension_load,
    demo_main_load,
)


@dataclass(frozen=True)
class SourcePlan:
    """One source with the loads it delivers and which of them split into single phases."""

    source: SampleSource
    split_single_phase: tuple[str, ...]
    nominal_voltage_v: float


def _module_ct(module: ExtensionModule) -> CtType:
    return CtType.MV333 if module is ExtensionModule.MV333 else CtType.A5


def _open_recording(
    settings: SourceSettings, data_dir: Path, wiring: Wiring, name: str, frequency_hz: float
) -> SampleSource:
    assert settings.recording_file is not None  # checked by SourceSettings
    path = settings.recording_file
    return open_recording(
        path if path.is_absolute() else data_dir / path,
        wiring,
        nominal_frequency_hz=frequency_hz,
        loop=settings.loop,
        load_name=name,
    )


def build_sources(config: MeterConfig, data_dir: Path, utc_offset_h: float) -> list[SourcePlan]:
    """Open every source the configuration names (SourceError on an unusable recording)."""
    main = config.main
    volts, hz = main.nominal_voltage_v, main.nominal_frequency_hz
    supply = {"nominal_voltage_v": volts, "nominal_frequency_hz": hz}
    simulated: list[SimulatedLoad] = []
    plans: list[SourcePlan] = []
    split = (main.name,) if main.as_single_phase_loads else ()
    if main.source.kind is SourceKind.SIMULATOR:
        base = demo_main_load(main.name, with_extensions=bool(config.loads))
        simulated.append(base.model_copy(update={"wiring": main.wiring, **supply}))
    else:
        recording = _open_recording(main.source, data_dir, main.wiring, main.name, hz)
        plans.append(SourcePlan(recording, split, volts))
    for index, load in enumerate(config.loads):
        if load.source.kind is SourceKind.MODBUS:
            continue  # polled by the service (service/polled.py), not measured here
        if load.source.kind is SourceKind.SIMULATOR:
            sim = demo_extension_load(index, load.name, _module_ct(load.module), load.ct_primary_a)
            simulated.append(sim.model_copy(update={"wiring": load.wiring, **supply}))
        else:
            recording = _open_recording(load.source, data_dir, load.wiring, load.name, hz)
            plans.append(SourcePlan(recording, (), volts))
    if simulated:
        sim_config = SimulatorConfig(
            loads=simulated, seed=config.simulator_seed, utc_offset_h=utc_offset_h
        )
        sim_split = split if main.source.kind is SourceKind.SIMULATOR else ()
        plans.insert(0, SourcePlan(Simulator(sim_config), sim_split, volts))
    return plans
