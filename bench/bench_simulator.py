"""How much faster than real time the simulator generates samples (prints, never asserts).

Usage: .venv/bin/python bench/bench_simulator.py [seconds of signal] [block seconds]
"""

from __future__ import annotations

import sys
import time

from emsbox.sources.simulator import Simulator, default_config, demo_building_config


def measure(name: str, source: Simulator, signal_s: float, block_s: float) -> None:
    """Read ``signal_s`` seconds in blocks of ``block_s`` and print the speed."""
    block = max(1, round(block_s * source.sample_rate_hz))
    n_blocks = max(1, round(signal_s * source.sample_rate_hz / block))
    source.read(block)  # warm up: first frame, imports, caches
    wall = time.perf_counter()
    cpu = time.process_time()
    for _ in range(n_blocks):
        source.read(block)
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    seconds = n_blocks * block / source.sample_rate_hz
    print(
        f"{name:<34} {len(source.loads):2d} loads {len(source.channels):3d} channels "
        f"@ {source.sample_rate_hz:g} S/s: {seconds / wall:7.0f} × real time "
        f"(wall {wall * 1e3 / seconds:.2f} ms, CPU {cpu * 1e3 / seconds:.2f} ms per signal second)"
    )


def main() -> None:
    signal_s = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    block_s = float(sys.argv[2]) if len(sys.argv) > 2 else 0.2
    start = {"start_s": 1_718_190_000.0}
    measure(
        "embedded default (main)",
        Simulator(default_config().model_copy(update=start)),
        signal_s,
        block_s,
    )
    for n in (4, 10):
        cfg = demo_building_config(n).model_copy(update=start)
        measure(f"demo building, {n} extensions", Simulator(cfg), signal_s, block_s)


if __name__ == "__main__":
    main()
