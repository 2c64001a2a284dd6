"""What the BACnet tests share: readings to serve, a gateway on an ephemeral port, a raw UDP
client, and the bacpypes3 client process."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modbus_support import reading as modbus_reading
from modbus_support import three_phase_values as modbus_values

from emsbox.bus import Bus, Reading
from emsbox.gateways.bacnet.config import BacnetConfig
from emsbox.gateways.bacnet.server import BacnetGateway, Identity
from emsbox.samples import Wiring

IDENTITY = Identity("9.8.7", "abc123def456")
LOADS = ["main", "hvac"]
CLIENT_SCRIPT = Path(__file__).with_name("bacnet_client.py")


def three_phase_values(seed: float = 0.0) -> dict[str, float]:
    """The Modbus tests' three-phase values, with every THD distinct and the L-L ones too (each
    object must be told apart by its value)."""
    v = modbus_values(seed)
    v |= {f"thd_{x}": 2.5 + k / 10 for k, x in enumerate(("i_l1", "i_l2", "i_l3", "v_l1"))}
    v |= {"thd_v_l2": 3.1, "thd_v_l3": 3.2, "thd_v_l12": 1.1, "thd_v_l23": 1.2, "thd_v_l31": 1.3}
    return v


def reading(load: str = "main", wiring: Wiring = Wiring.THREE_PHASE_4W, **extra: float) -> Reading:
    """A reading of ``load`` now with the values above (``extra`` replaces some), as the Modbus
    tests build theirs."""
    return modbus_reading(load, wiring, **(three_phase_values() | extra))


@dataclass
class FakeIo:
    """The controller's digital I/O as the gateway sees it."""

    input_closed: bool = False
    output_on: bool = False
    remote: bool = True
    switched: list[tuple[bool, str]] = field(default_factory=list)

    def state(self) -> tuple[bool, bool]:
        return self.input_closed, self.output_on

    def set_output(self, on: bool, requested_by: str) -> None:
        if not self.remote:
            raise RuntimeError("the output's function is not remote")
        self.output_on = on
        self.switched.append((on, requested_by))


@dataclass
class Health:
    """Per-load health as the service would say it."""

    unhealthy: set[str] = field(default_factory=set)

    def __call__(self, load: str) -> bool:
        return load not in self.unhealthy


@contextmanager
def running_gateway(
    config: BacnetConfig | None = None, loads: list[str] | None = None
) -> Iterator[tuple[BacnetGateway, Bus, FakeIo, Health]]:
    """A gateway on 127.0.0.1 and an ephemeral port, serving ``loads`` with readings."""
    bus = Bus()
    io = FakeIo()
    health = Health()
    loads = LOADS if loads is None else loads
    for load in loads:
        bus.publish(reading(load, Wiring.SINGLE_PHASE if load == "hvac" else Wiring.THREE_PHASE_4W))
    gateway = BacnetGateway(bus, output=io, load_health=health, io_state=io.state)
    config = config or BacnetConfig(enabled=True, bind_address="127.0.0.1", port=0)
    try:
        gateway.apply(config, loads, IDENTITY)
        wait_until(lambda: _has_readings(gateway, loads))
        yield gateway, bus, io, health
    finally:
        gateway.stop()


def _has_readings(gateway: BacnetGateway, loads: list[str]) -> bool:
    state = gateway._state  # the test waits for the feed thread's first delivery
    return all(state.healthy.get(load) for load in loads)


def wait_until(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


# -- raw UDP --------------------------------------------------------------------------------


def frame(apdu: bytes, npdu: bytes = b"\x01\x04", function: int = 0x0A) -> bytes:
    """A BVLC Original-Unicast-NPDU around an APDU."""
    payload = npdu + apdu
    return bytes([0x81, function]) + struct.pack(">H", 4 + len(payload)) + payload


def confirmed(
    invoke: int, service: int, body: bytes, max_apdu_code: int = 5, sa: bool = True
) -> bytes:
    """A Confirmed-Request APDU (max segments > 64 when segments are accepted)."""
    first = 0x02 if sa else 0x00
    return bytes([first, (0x70 if sa else 0x00) | max_apdu_code, invoke, service]) + body


def oid(kind: int, instance: int) -> bytes:
    return struct.pack(">I", kind << 22 | instance)


def rp_body(kind: int, instance: int, prop: int, index: int | None = None) -> bytes:
    body = b"\x0c" + oid(kind, instance)
    body += bytes([0x19, prop]) if prop < 256 else b"\x1a" + struct.pack(">H", prop)
    if index is not None:
        body += bytes([0x29, index])
    return body


class RawClient:
    """A UDP socket speaking hand-built BACnet/IP: sends requests, collects segments."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2.0)

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.address)

    def receive(self, timeout_s: float = 2.0) -> bytes | None:
        self.sock.settimeout(timeout_s)
        try:
            data, _ = self.sock.recvfrom(4096)
        except TimeoutError:
            return None
        return data

    def drain_quick(self) -> None:
        """Throw away whatever answers have arrived, without waiting."""
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(4096)
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)

    def drain(self) -> None:
        while self.receive(0.05) is not None:
            pass

    def request(self, apdu: bytes, window: int = 16) -> tuple[bytes, int]:
        """Send a confirmed request; the answering APDU (segments joined into one
        unsegmented-looking ComplexACK) and how many datagrams it took."""
        self.send(frame(apdu))
        invoke = apdu[2]
        parts: list[bytes] = []
        count = 0
        since_ack = 0
        while True:
            data = self.receive()
            assert data is not None, "no answer"
            count += 1
            answer = strip(data)
            if answer[1] != invoke:
                continue
            if answer[0] >> 4 != 3 or not answer[0] & 0x08:
                return answer, count
            sequence, more = answer[2], answer[0] & 0x04
            parts.append(answer[5:])
            since_ack += 1
            if len(parts) == 1 or not more or since_ack >= window:
                self.send(frame(bytes([0x40, invoke, sequence, window]), b"\x01\x00"))
                since_ack = 0
            if not more:
                return bytes([0x30, invoke, answer[4]]) + b"".join(parts), count


def strip(data: bytes) -> bytes:
    """The APDU of a BVLC + NPDU message without routing information; checks the NPDU's
    data_expecting_reply bit (6.2.2): set for confirmed requests and for the segments of a
    segmented ComplexACK, clear for everything else."""
    assert data[0] == 0x81 and data[1] in (0x0A, 0x0B), data.hex()
    control = data[5]
    assert not control & 0x28, "routed answer"
    apdu = data[6:]
    kind = apdu[0] >> 4
    expecting = kind == 0 or (kind == 3 and bool(apdu[0] & 0x08))
    assert bool(control & 0x04) == expecting, f"data_expecting_reply wrong: {data.hex()}"
    return apdu


# -- the bacpypes3 client process -------------------------------------------------------------


class ClientProcess:
    """bacpypes3 in a child process, one JSON command and answer at a time."""

    def __init__(self, address: tuple[str, int]) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(CLIENT_SCRIPT), f"{address[0]}:{address[1]}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        first = self._line()
        assert first == {"ready": True}, first

    def _line(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            assert self.proc.stderr is not None
            raise AssertionError("client died: " + self.proc.stderr.read()[-3000:])
        return json.loads(line)

    def call(self, op: str, **args: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return self._line()

    def result(self, op: str, **args: Any) -> Any:
        answer = self.call(op, **args)
        assert "result" in answer, answer
        return answer["result"]

    def close(self) -> None:
        if self.proc.poll() is None:
            with suppress(AssertionError, BrokenPipeError, json.JSONDecodeError):
                self.call("quit")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def client_process(address: tuple[str, int]) -> Iterator[ClientProcess]:
    """A bacpypes3 client talking to ``address``."""
    client = ClientProcess(address)
    try:
        yield client
    finally:
        client.close()
