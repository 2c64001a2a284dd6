"""`GET /now` latency at a steady request rate, and the service's memory and CPU (prints only).

Usage: .venv/bin/python bench/bench_api.py [--rate 200] [--seconds 30] [--extension-loads 10]

Starts `emsbox run` (the simulator with 1 + N loads, HTTPS on 127.0.0.1), then a load
generator in this process sends GET /api/v1/loads/<load>/now at a fixed rate over a few
keep-alive connections, cycling through the loads, and prints latency percentiles, the
service's resident memory and the share of a core it used.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import httpx

from service_process import EXTENSIONS, ServiceProcess


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--extension-loads", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()

    service = ServiceProcess(args.extension_loads)
    loads = ["main", *EXTENSIONS[: args.extension_loads]]
    headers = {"Authorization": f"Bearer {service.token}"}
    try:
        with httpx.Client(base_url=service.url, verify=service.ssl, headers=headers) as c:
            while any(c.get(f"/api/v1/loads/{n}/now").status_code != 200 for n in loads):
                time.sleep(0.2)
        time.sleep(3.0)  # let start-up work settle
        pss_idle, rss_idle = service.pss_mb(), service.rss_mb()
        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()
        interval = args.connections / args.rate
        start = time.perf_counter() + 0.5
        cpu0 = service.cpu_s()

        def worker(k: int) -> None:
            with httpx.Client(base_url=service.url, verify=service.ssl, headers=headers) as c:
                i = 0
                while True:
                    due = start + (i + k / args.connections) * interval
                    if due - start > args.seconds:
                        return
                    delay = due - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    t0 = time.perf_counter()
                    r = c.get(f"/api/v1/loads/{loads[(i + k) % len(loads)]}/now")
                    dt = time.perf_counter() - t0
                    with lock:
                        latencies.append(dt)
                        errors[0] += r.status_code != 200
                    i += 1

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        cpu = service.cpu_s() - cpu0
        pss, rss = service.pss_mb(), service.rss_mb()
        q = statistics.quantiles(latencies, n=100)
        print(
            f"loads: {len(loads)}; requests: {len(latencies)} in {elapsed:.1f} s "
            f"({len(latencies) / elapsed:.0f}/s), errors: {errors[0]}"
        )
        print(
            f"GET /now latency: p50 {q[49] * 1e3:.2f} ms, p90 {q[89] * 1e3:.2f} ms, "
            f"p99 {q[98] * 1e3:.2f} ms, max {max(latencies) * 1e3:.2f} ms"
        )
        print(
            f"service memory (PSS of its {len(service.pids())} processes): "
            f"{pss_idle:.0f} MB before, {pss:.0f} MB after the load; "
            f"their RSS added up: {rss_idle:.0f} MB before, {rss:.0f} MB after"
        )
        print(
            f"service CPU during the load: {100 * cpu / elapsed:.0f} % of one core "
            f"(meter, logger and API together)"
        )
    finally:
        service.stop()


if __name__ == "__main__":
    main()
