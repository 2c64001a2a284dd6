"""The MQTT gateway: outbox drain rate and latency from measurement to publish (prints only).

Usage: .venv/bin/python bench/bench_mqtt.py [--records 20000] [--runs 3] [--loads 11]
       [--seconds 60] [--skip-drain] [--skip-latency] [--profile]

1. Outbox drain: a real ``LogStore`` (1-s logging tier, the outbox on) is filled with
   ``--records`` records: readings of ``--loads`` three-phase loads (3P4W: every instantaneous
   value with its minimum and maximum, every counter) at one per second, committed. Then a
   fresh Mosquitto broker is started, a subscriber in another process subscribes (QoS 1) to
   ``<prefix>/+/+/record`` and the gateway's status topic, and an in-process ``MqttGateway``
   (a real bus, the store as its outbox, no TLS) is started. Records per second are counted
   from the gateway's "online" message (its first connection) to the last record the
   subscriber receives; the outbox is then emptied by the broker's acknowledgements, applied
   by the store's next pass (the benchmark flushes the store to apply them at once). Runs
   ``--runs`` times, each with a fresh store and broker; prints each run and the median, the
   average record payload size, and the CPU each party used per record. ``--profile``
   prints a cProfile of the gateway's thread in the first run (which the profiler slows).
2. Latency: a real ``emsbox run`` (the simulator, ``--loads`` loads) publishing live state
   every second to a fresh broker; for each state message, the time it reached a subscriber
   minus its ``ts`` (the end of the reading's measurement cycle), over ``--seconds``. Records
   (published once committed, every ``store.commit_interval_s``) are timed too, from the end
   of their interval, for information. The simulator's blocks (0.2 s) are computed when
   their first sample is due, not recorded, so a reading can arrive up to a block before its
   ``ts``; with an ADC, whose block is complete only at its end, add up to 0.2 s.

Targets (issue 6): outbox drain ≥ 2000 records/s to a local broker; latency from
measurement to publish < 1 s.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from emsbox import variables
from emsbox.bus import Bus, Reading
from emsbox.gateways.mqtt.config import MqttConfig
from emsbox.gateways.mqtt.discovery import DeviceInfo
from emsbox.gateways.mqtt.gateway import MqttGateway
from emsbox.samples import Wiring
from emsbox.store.config import StoreConfig, Tier
from emsbox.store.log import LogStore
from emsbox.testing.mosquitto import Broker
from emsbox.testing.service_run import ServedProcess
from service_process import EXTENSIONS, load_overrides

INSTANT = [v.name for v in variables.INSTANTANEOUS]
COUNTERS = list(variables.COUNTER_NAMES)
PREFIX = "emsbox"
DEVICE = "bench"
IDLE_TIMEOUT_S = 30.0  # the subscriber gives up after this long without a record


def machine_busy_s() -> float:
    """CPU seconds every core of the machine has spent busy (not idle or waiting) so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- 1. outbox drain ----------------------------------------------------------------------------


def fill(directory: Path, records: int, loads: list[str]) -> tuple[LogStore, float]:
    """A started store whose outbox holds at least ``records`` records; and the fill time."""
    config = StoreConfig(tiers=[Tier(resolution_s=1), Tier(resolution_s=60)], logging_interval_s=1)
    directory.mkdir(parents=True, exist_ok=True)
    store = LogStore(directory / "log.sqlite3", config)
    store.start()
    store.set_outbox(max(records, MqttConfig().outbox_max_records))
    rng = np.random.default_rng(1)
    base = {n: 100.0 + 100.0 * rng.random(len(INSTANT)) for n in loads}
    counters = {n: 1e5 * rng.random(len(COUNTERS)) for n in loads}
    seconds = -(-records // len(loads))
    start = int(time.time()) - seconds - 10
    began = time.perf_counter()
    for s in range(seconds):
        t = float(start + s + 1)
        for n in loads:
            v = base[n] * (1.0 + 0.01 * rng.standard_normal(len(INSTANT)))
            counters[n] += 0.001 * rng.random(len(COUNTERS))
            store.submit(
                Reading(
                    load=n,
                    wiring=Wiring.THREE_PHASE_4W,
                    timestamp_s=t,
                    duration_s=1.0,
                    windows=5,
                    values=dict(zip(INSTANT, v.tolist(), strict=True)),
                    minimum=dict(zip(INSTANT, (v * 0.99).tolist(), strict=True)),
                    maximum=dict(zip(INSTANT, (v * 1.01).tolist(), strict=True)),
                    counters=dict(zip(COUNTERS, counters[n].tolist(), strict=True)),
                )
            )
        if (s + 1) % 600 == 0:
            store.flush(60.0)
    store.flush(60.0)
    return store, time.perf_counter() - began


@dataclass(frozen=True)
class Received:
    """What the subscriber saw of one drain."""

    online_at: float | None  # the gateway's "online" status message
    first_at: float | None
    last_at: float | None
    messages: int
    unique: int
    payload_bytes: int
    in_order: bool
    cpu_s: float


def _subscribe(port: int, expected: int, pipe: Connection) -> None:
    """In its own process: count records until ``expected`` distinct ones arrived."""
    seen: set[int] = set()
    state: dict[str, Any] = {
        "online": None,
        "first": None,
        "last": None,
        "messages": 0,
        "bytes": 0,
        "prev": 0,
        "in_order": True,
    }
    done = threading.Event()
    ready = threading.Event()

    def message(_c: object, _u: object, m: paho.MQTTMessage) -> None:
        now = time.time()
        if m.topic.endswith("/status"):
            if m.payload == b"online" and state["online"] is None:
                state["online"] = now
            return
        payload = bytes(m.payload)
        # The gateway puts "seq" first: read it without parsing ~4 kB of JSON, so that the
        # subscriber, on the same two cores, takes less of the machine.
        head = b'{"seq":'
        if payload.startswith(head):
            seq = int(payload[len(head) : payload.index(b",", len(head))])
        else:
            seq = int(json.loads(payload)["seq"])
        if state["first"] is None:
            state["first"] = now
        state["last"] = now
        state["messages"] += 1
        state["bytes"] += len(payload)
        if seq <= state["prev"]:
            state["in_order"] = False
        state["prev"] = seq
        seen.add(seq)
        if len(seen) >= expected:
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
    client.on_message = message
    client.on_connect = lambda c, *_: c.subscribe(
        [(f"{PREFIX}/+/+/record", 1), (f"{PREFIX}/+/status", 1)]
    )
    client.on_subscribe = lambda *_: ready.set()
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    if not ready.wait(10):
        raise RuntimeError("the subscriber could not subscribe")
    pipe.send("ready")
    count = -1
    while not done.wait(IDLE_TIMEOUT_S):
        if len(seen) == count:
            break  # nothing new for IDLE_TIMEOUT_S: report what arrived
        count = len(seen)
    pipe.send(  # before stopping the network thread, which takes up to a second
        Received(
            state["online"],
            state["first"],
            state["last"],
            state["messages"],
            len(seen),
            state["bytes"],
            state["in_order"],
            time.process_time(),
        )
    )
    client.loop_stop()
    client.disconnect()


class ProfiledGateway(MqttGateway):
    """The gateway with its thread under cProfile (that thread only)."""

    profile: cProfile.Profile | None = None

    def _run(self) -> None:
        self.profile = cProfile.Profile()
        self.profile.enable()
        try:
            super()._run()
        finally:
            self.profile.disable()


def drain_once(directory: Path, records: int, loads: list[str], profile: bool) -> dict[str, float]:
    """Fill a store, drain it to a fresh broker; the run's numbers."""
    store, fill_s = fill(directory / "emsbox", records, loads)
    count = store.outbox_stats().records
    broker = Broker(directory / "broker").start()
    assert broker.process is not None
    gateway = (ProfiledGateway if profile else MqttGateway)(Bus(), store, directory / "emsbox")
    ours, theirs = multiprocessing.Pipe()
    sub = multiprocessing.Process(target=_subscribe, args=(broker.port, count, theirs))
    sub.start()
    theirs.close()  # so that recv raises EOFError, rather than waiting, if the subscriber dies
    try:
        if ours.recv() != "ready":
            raise RuntimeError("the subscriber did not start")
        config = MqttConfig(
            enabled=True,
            host="127.0.0.1",
            port=broker.port,
            tls=False,
            device_id=DEVICE,
            topic_prefix=PREFIX,
            publish_records=True,
            outbox_max_records=max(records, MqttConfig().outbox_max_records),
        )
        cpu0, broker0, busy0 = time.process_time(), cpu_s(broker.process.pid), machine_busy_s()
        applied = time.time()
        gateway.apply(config, loads, DeviceInfo(DEVICE, "bench", "0"))
        got: Received = ours.recv()
        cpu1, broker1, busy1 = time.process_time(), cpu_s(broker.process.pid), machine_busy_s()
        wall = time.time() - applied
        while True:
            store.flush(60.0)  # applies the acknowledgements (the store's next pass would)
            if store.outbox_stats().records == 0:
                break
            if time.time() - (got.last_at or applied) > IDLE_TIMEOUT_S:
                break
            time.sleep(0.005)
        emptied = time.time()
        waiting = store.outbox_stats().records
    finally:
        sub.join(30)
        gateway.stop()
        store.close()
        broker.stop()
    if isinstance(gateway, ProfiledGateway) and gateway.profile is not None:
        out = io.StringIO()
        stats = pstats.Stats(gateway.profile, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(25)
        print(out.getvalue())
    online = got.online_at or applied
    last = got.last_at or online
    return {
        "records": count,
        "received": got.unique,
        "duplicates": got.messages - got.unique,
        "in_order": float(got.in_order),
        "fill_s": fill_s,
        "connect_s": online - applied,
        "first_s": (got.first_at or online) - online,
        "drain_s": last - online,
        "rate": got.unique / (last - online) if last > online else 0.0,
        "empty_s": emptied - online,
        "waiting": waiting,
        "payload_bytes": got.payload_bytes / max(1, got.messages),
        "cpu_gateway_us": 1e6 * (cpu1 - cpu0) / max(1, got.unique),
        "cpu_broker_us": 1e6 * (broker1 - broker0) / max(1, got.unique),
        "cpu_subscriber_us": 1e6 * got.cpu_s / max(1, got.unique),
        "cores_busy": (busy1 - busy0) / wall,
        "cores_ours": (cpu1 - cpu0 + broker1 - broker0 + got.cpu_s) / wall,
    }


def drain(records: int, runs: int, loads: list[str], profile: bool) -> None:
    """Run the drain ``runs`` times and print each run and the median."""
    print(
        f"outbox drain: {records} records of {len(loads)} three-phase loads "
        f"({len(INSTANT)} values with min/max + {len(COUNTERS)} counters), "
        f"QoS 1, local broker, no TLS"
    )
    results = []
    for k in range(runs):
        directory = Path(tempfile.mkdtemp(prefix="emsbox-bench-mqtt-"))
        try:
            r = drain_once(directory, records, loads, profile and k == 0)
        finally:
            shutil.rmtree(directory, ignore_errors=True)  # about 100 MB per 20 000 records
        results.append(r)
        print(
            f"  run {k + 1}: {r['received']:.0f}/{r['records']:.0f} records in "
            f"{r['drain_s']:.2f} s = {r['rate']:.0f} records/s; outbox empty after "
            f"{r['empty_s']:.2f} s ({r['waiting']:.0f} left); connect {r['connect_s']:.2f} s, "
            f"first record {r['first_s']:.3f} s; duplicates {r['duplicates']:.0f}, "
            f"in order {'yes' if r['in_order'] else 'NO'}; filled in {r['fill_s']:.1f} s"
        )
        print(
            "         CPU per record: gateway and store (this process) "
            f"{r['cpu_gateway_us']:.0f} µs, "
            f"broker {r['cpu_broker_us']:.0f} µs, subscriber {r['cpu_subscriber_us']:.0f} µs; "
            f"cores busy {r['cores_busy']:.2f} of {os.cpu_count()}, "
            f"{r['cores_ours']:.2f} by these three"
        )
    rate = statistics.median(r["rate"] for r in results)
    empty = statistics.median(r["empty_s"] for r in results)
    size = statistics.mean(r["payload_bytes"] for r in results)
    print(f"  median: {rate:.0f} records/s; outbox empty after {empty:.2f} s")
    print(f"  record payload: {size:.0f} bytes on average")


# -- 2. latency ---------------------------------------------------------------------------------


def latency(seconds: float, loads: int, warmup_s: float = 5.0) -> None:
    """A real `emsbox run` publishing live state every second; print the delays."""
    directory = Path(tempfile.mkdtemp(prefix="emsbox-bench-mqtt-latency-"))
    broker = Broker(directory / "broker").start()
    lock = threading.Lock()
    states: list[tuple[float, float]] = []  # (received, ts)
    records: list[tuple[float, float]] = []  # (received, end of the interval)
    ready = threading.Event()

    def message(_c: object, _u: object, m: paho.MQTTMessage) -> None:
        now = time.time()
        if m.retain:
            return  # an old value the broker kept, not a live one
        body = json.loads(m.payload)
        with lock:
            if m.topic.endswith("/state"):
                states.append((now, float(body["ts"])))
            else:
                records.append((now, float(body["ts"]) + float(body["interval_s"])))

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-latency")
    client.on_message = message
    client.on_connect = lambda c, *_: c.subscribe(
        [(f"{PREFIX}/+/+/state", 1), (f"{PREFIX}/+/+/record", 1)]
    )
    client.on_subscribe = lambda *_: ready.set()
    client.connect("127.0.0.1", broker.port, keepalive=60)
    client.loop_start()
    server: ServedProcess | None = None
    try:
        if not ready.wait(10):
            raise RuntimeError("the subscriber could not subscribe")
        options = {
            "mqtt.enabled": "true",
            "mqtt.host": "127.0.0.1",
            "mqtt.port": str(broker.port),
            "mqtt.tls": "false",
            "mqtt.topic_prefix": PREFIX,
            "mqtt.state_interval_s": "1",
            "store.logging_interval_s": "1",
        }
        sets = [a for k, v in options.items() for a in ("--set", f"{k}={v}")]
        server = ServedProcess(directory / "data", *sets, *load_overrides(loads - 1))
        deadline = time.monotonic() + 60.0
        while not states:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no state message within 60 s:\n{server.stderr()}")
            time.sleep(0.1)
        time.sleep(warmup_s)
        with lock:
            start = len(states), len(records)
        busy0, service0 = machine_busy_s(), sum(cpu_s(p) for p in _tree(server.proc.pid))
        time.sleep(seconds)
        busy = (machine_busy_s() - busy0) / seconds
        service = (sum(cpu_s(p) for p in _tree(server.proc.pid)) - service0) / seconds
        with lock:
            state_delays = sorted(r - ts for r, ts in states[start[0] :])
            record_delays = sorted(r - end for r, end in records[start[1] :])
    finally:
        if server is not None:
            server.stop()
        client.loop_stop()
        client.disconnect()
        broker.stop()
        shutil.rmtree(directory, ignore_errors=True)
    print(
        f"latency: `emsbox run` with {loads} loads, state every 1 s (QoS 0), "
        f"{seconds:g} s after {warmup_s:g} s of warm-up; cores busy {busy:.2f} of "
        f"{os.cpu_count()}, {service:.2f} by the service"
    )
    _delays("state: receive time − ts (end of the measurement cycle)", state_delays)
    _delays(
        "record: receive time − end of its interval "
        f"(committed every {StoreConfig().commit_interval_s:g} s)",
        record_delays,
    )


def _tree(pid: int) -> list[int]:
    """``pid`` and its children (the service and its acquisition process)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [pid, *(int(c) for t in tasks for c in (t / "children").read_text().split())]


def _delays(what: str, delays: list[float]) -> None:
    if len(delays) < 2:
        print(f"  {what}: {len(delays)} messages")
        return
    p95 = statistics.quantiles(delays, n=20)[18]
    print(
        f"  {what}: {len(delays)} messages, median {1000 * statistics.median(delays):.0f} ms, "
        f"p95 {1000 * p95:.0f} ms, max {1000 * delays[-1]:.0f} ms, "
        f"min {1000 * delays[0]:.0f} ms"
    )


def main() -> None:
    """Parse the options and run both parts."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000, help="records to drain per run")
    parser.add_argument("--runs", type=int, default=3, help="drain runs")
    parser.add_argument("--loads", type=int, default=11, help="1 to 11 (main + extensions)")
    parser.add_argument("--seconds", type=float, default=60.0, help="latency run length")
    parser.add_argument("--skip-drain", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the gateway thread")
    args = parser.parse_args()
    if not 1 <= args.loads <= 1 + len(EXTENSIONS):
        parser.error(f"--loads must be 1 to {1 + len(EXTENSIONS)}")
    if not args.skip_drain:
        drain(args.records, args.runs, ["main", *EXTENSIONS[: args.loads - 1]], args.profile)
    if not args.skip_latency:
        latency(args.seconds, args.loads)


if __name__ == "__main__":
    main()
