"""The BACnet/IP device under load: ReadProperty per second and ReadPropertyMultiple time
(prints only).

Usage: .venv/bin/python bench/bench_bacnet.py [--loads 11] [--requests 5000] [--in-flight 8]

Starts the BACnet gateway in another process (its own bus, a reading of every load published
each second, as the service does), then, from this process:

- a raw UDP client (hand-built requests, SegmentACKs sent by itself, so that the client's
  own cost is negligible): ReadProperty of presentValue, one at a time and with several in
  flight; ReadPropertyMultiple of every property (ALL) of the 82 objects of one load, and of
  presentValue + statusFlags of them, with the client's max APDU 1476 (segmented);
- a bacpypes3 client in a third process: the same RPM ALL, and sequential ReadProperty.

Targets: ≥ 500 ReadProperty/s; RPM of all objects of one load < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "tests" / "gateways" / "bacnet_client.py"
LOAD_NAMES = ["main", *(f"ext{k}" for k in range(1, 20))]


def serve(loads: int, pipe: Connection) -> None:
    """The gateway's process: publish readings every second, serve until told to stop."""
    sys.path.insert(0, str(ROOT / "tests" / "gateways"))
    from bacnet_support import IDENTITY, reading

    from emsbox.bus import Bus
    from emsbox.gateways.bacnet.config import BacnetConfig
    from emsbox.gateways.bacnet.server import BacnetGateway

    names = LOAD_NAMES[:loads]
    bus = Bus()
    stop = threading.Event()

    def publish() -> None:
        k = 0
        while not stop.is_set():
            for name in names:
                bus.publish(reading(name, v_l1=230.0 + k % 7))
            k += 1
            stop.wait(1.0)

    threading.Thread(target=publish, daemon=True).start()
    gateway = BacnetGateway(bus, load_health=lambda _: True, io_state=lambda: (False, False))
    gateway.apply(BacnetConfig(enabled=True, bind_address="127.0.0.1", port=0), names, IDENTITY)
    time.sleep(0.5)
    pipe.send(gateway.address)
    pipe.recv()
    stop.set()
    gateway.stop()


def frame(apdu: bytes) -> bytes:
    payload = b"\x01\x04" + apdu
    return b"\x81\x0a" + struct.pack(">H", 4 + len(payload)) + payload


def rp(invoke: int, kind: int, instance: int) -> bytes:
    oid = struct.pack(">I", kind << 22 | instance)
    return frame(bytes([0x02, 0x75, invoke, 12]) + b"\x0c" + oid + b"\x19\x55")


def load_keys() -> list[tuple[int, int]]:
    return [(0 if i < 39 else 2 if i < 80 else 19 if i == 80 else 5, 1000 + i) for i in range(82)]


def rpm(invoke: int, properties: bytes) -> bytes:
    body = b"".join(
        b"\x0c" + struct.pack(">I", k << 22 | i) + b"\x1e" + properties + b"\x1f"
        for k, i in load_keys()
    )
    return frame(bytes([0x02, 0x75, invoke, 14]) + body)


class Raw:
    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3)

    def transact(self, request: bytes, window: int = 16) -> tuple[int, int]:
        """Send, collect the answer (acknowledging segments); (octets, datagrams)."""
        self.sock.sendto(request, self.address)
        invoke = request[8]
        octets = datagrams = since = 0
        while True:
            data = self.sock.recv(2048)
            apdu = data[6:]
            if apdu[1] != invoke:
                continue
            datagrams += 1
            octets += len(apdu)
            if apdu[0] >> 4 != 3 or not apdu[0] & 0x08:
                return octets, datagrams
            more = apdu[0] & 0x04
            since += 1
            if datagrams == 1 or not more or since >= window:
                ack = bytes([0x40, invoke, apdu[2], window])
                self.sock.sendto(b"\x81\x0a\x00\x0a\x01\x00" + ack, self.address)
                since = 0
            if not more:
                return octets, datagrams


def raw_bench(address: tuple[str, int], loads: int, requests: int, in_flight: int) -> None:
    raw = Raw(address)
    keys = [(k, 1000 * n + i) for n in range(1, loads + 1) for k, i in load_keys()]
    latencies = []
    start = time.perf_counter()
    for n in range(requests):
        kind, instance = keys[n % len(keys)]
        t0 = time.perf_counter()
        raw.transact(rp(n % 256, kind, instance))
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    latencies.sort()
    print(
        f"ReadProperty, one at a time: {requests / elapsed:8.0f} /s  "
        f"p50 {latencies[len(latencies) // 2] * 1e3:.3f} ms  "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1e3:.3f} ms"
    )
    sent = received = 0
    start = time.perf_counter()
    while sent < min(in_flight, requests):
        kind, instance = keys[sent % len(keys)]
        raw.sock.sendto(rp(sent % 256, kind, instance), address)
        sent += 1
    while received < requests:
        raw.sock.recv(2048)
        received += 1
        if sent < requests:
            kind, instance = keys[sent % len(keys)]
            raw.sock.sendto(rp(sent % 256, kind, instance), address)
            sent += 1
    elapsed = time.perf_counter() - start
    print(f"ReadProperty, {in_flight} in flight:   {requests / elapsed:8.0f} /s")
    for label, props in (("ALL", b"\x09\x08"), ("presentValue+statusFlags", b"\x09\x55\x09\x6f")):
        times = []
        for n in range(50):
            t0 = time.perf_counter()
            octets, datagrams = raw.transact(rpm(n, props))
            times.append(time.perf_counter() - t0)
        print(
            f"RPM {label} of one load (82 objects): median {statistics.median(times) * 1e3:.2f} ms"
            f"  max {max(times) * 1e3:.2f} ms  ({octets} octets in {datagrams} segments)"
        )


def build_time() -> None:
    """The device's own time for an RPM ALL of one load: decoding the request and encoding
    the answer, in this process without the network."""
    sys.path.insert(0, str(ROOT / "tests" / "gateways"))
    from bacnet_support import IDENTITY, reading

    from emsbox.gateways.bacnet import services
    from emsbox.gateways.bacnet.config import BacnetConfig
    from emsbox.gateways.bacnet.database import Database, LiveState
    from emsbox.gateways.bacnet.objects import object_table
    from emsbox.gateways.bacnet.server import device_identity

    state = LiveState(readings={"main": reading("main")}, healthy={"main": True})
    identity = device_identity(BacnetConfig(), IDENTITY)
    db = Database(identity, object_table(LOAD_NAMES[:11]), state=state)
    for label, props in (("ALL", b"\x09\x08"), ("presentValue+statusFlags", b"\x09\x55\x09\x6f")):
        body = rpm(0, props)[10:]
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            services.read_property_multiple(db, body)
            times.append(time.perf_counter() - t0)
        print(f"RPM {label} of one load, device time only: {statistics.median(times) * 1e3:.2f} ms")


def bacpypes3_bench(address: tuple[str, int]) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(CLIENT), f"{address[0]}:{address[1]}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def call(**cmd: object) -> dict[str, object]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(cmd) + "\n")
        proc.stdin.flush()
        answer: dict[str, object] = json.loads(proc.stdout.readline())
        return answer

    proc.stdout.readline()
    args: list[object] = []
    names = {0: "analog-input", 2: "analog-value", 19: "multi-state-value", 5: "binary-value"}
    for kind, instance in load_keys():
        args += [f"{names[kind]},{instance}", ["all"]]
    times = []
    for _ in range(10):
        answer = call(op="rpm", args=args)
        result = answer["result"]
        assert isinstance(result, dict)
        times.append(float(result["elapsed_s"]))
    print(
        f"bacpypes3 client, RPM ALL of one load: median {statistics.median(times) * 1e3:.1f} ms"
        " (client included)"
    )
    objects = [f"analog-input,{1000 + i}" for i in range(39)] * 10
    t0 = time.perf_counter()
    call(op="read_many", objects=objects, property="presentValue")
    elapsed = time.perf_counter() - t0
    print(f"bacpypes3 client, ReadProperty one at a time: {len(objects) / elapsed:.0f} /s")
    proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
    proc.stdin.close()
    proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=11)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=8)
    args = parser.parse_args()
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(args.loads, theirs))
    server.start()
    address = ours.recv()
    print(f"BACnet device on {address[0]}:{address[1]}, {args.loads} loads")
    try:
        raw_bench(address, args.loads, args.requests, args.in_flight)
        build_time()
        bacpypes3_bench(address)
    finally:
        ours.send("stop")
        server.join(10)


if __name__ == "__main__":
    main()
