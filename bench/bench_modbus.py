"""The Modbus TCP server under load: requests per second and latency (prints only).

Usage: .venv/bin/python bench/bench_modbus.py [--clients 10] [--seconds 10] [--loads 11]

Starts `emsbox run` in a fresh data directory with the Modbus TCP server on and the demo
building's main load plus extension loads, then runs ``--clients`` TCP connections in another
process (asyncio with uvloop), each sending FC 3 requests for 125 registers of the native map
one after the other (the next when the answer is in), spread over every unit. Prints requests
per second over all clients, latency percentiles, and how old the served reading is (the
native map's timestamp against the clock) — at most one publishing cycle is the target.

Targets: ≥ 3000 requests/s with 10 clients, p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import statistics
import struct
import tempfile
import time
from pathlib import Path

import uvloop

from emsbox.testing.service_run import ServedProcess
from service_process import load_overrides

NATIVE = 30000


async def _client(port: int, units: int, seconds: float, k: int) -> tuple[list[float], list[float]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies: list[float] = []
    ages: list[float] = []
    end = time.perf_counter() + seconds
    t = 0
    while time.perf_counter() < end:
        t = (t + 1) & 0xFFFF
        unit = 1 + (t + k) % units
        frame = struct.pack(">HHHBBHH", t, 0, 6, unit, 3, NATIVE, 125)
        start = time.perf_counter()
        writer.write(frame)
        header = await reader.readexactly(7)
        length = struct.unpack(">H", header[4:6])[0]
        body = await reader.readexactly(length - 1)
        latencies.append(time.perf_counter() - start)
        if t % 100 == 0:
            stamp_ms = struct.unpack(">Q", body[2:10])[0]
            ages.append(time.time() - stamp_ms / 1000)
    writer.close()
    return latencies, ages


async def _all(port: int, clients: int, units: int, seconds: float) -> list[tuple]:
    return await asyncio.gather(*(_client(port, units, seconds, k) for k in range(clients)))


def _run_clients(port: int, clients: int, units: int, seconds: float, out) -> None:
    uvloop.install()
    out.send(asyncio.run(_all(port, clients, units, seconds)))


def main() -> None:
    """Start the service, load it, print the numbers."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--loads", type=int, default=11, help="1 to 11 (main + extensions)")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="emsbox-bench-modbus-")) / "data"
    server = ServedProcess(
        data,
        "--set",
        "modbus.tcp_enabled=true",
        "--set",
        "modbus.tcp_port=0",
        "--set",
        "modbus.bind_address=127.0.0.1",
        *load_overrides(args.loads - 1),
    )
    try:
        port = int(re.search(r"Modbus TCP: [\d.]+:(\d+)", server.stdout()).group(1))
        time.sleep(3.0)  # the first readings of every load
        ours, theirs = multiprocessing.Pipe()
        proc = multiprocessing.Process(
            target=_run_clients, args=(port, args.clients, args.loads, args.seconds, theirs)
        )
        proc.start()
        results = ours.recv()
        proc.join()
    finally:
        server.stop()
    latencies = sorted(x for lat, _ in results for x in lat)
    ages = [a for _, age in results for a in age]
    q = statistics.quantiles(latencies, n=100)
    print(f"clients={args.clients} loads={args.loads} registers=125 seconds={args.seconds:g}")
    print(f"requests_per_s={len(latencies) / args.seconds:.0f}")
    print(
        f"latency_ms p50={1000 * q[49]:.2f} p99={1000 * q[98]:.2f} max={1000 * latencies[-1]:.2f}"
    )
    print(f"reading_age_s median={statistics.median(ages):.2f} max={max(ages):.2f}")


if __name__ == "__main__":
    main()
