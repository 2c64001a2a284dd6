"""What the Modbus tests share: readings to serve, a gateway on an ephemeral port, raw TCP."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager

from emsbox.bus import Bus, Reading
from emsbox.gateways.modbus.config import ModbusConfig
from emsbox.gateways.modbus.image import Identity, LoadRating
from emsbox.gateways.modbus.server import ModbusGateway
from emsbox.samples import Wiring
from emsbox.variables import COUNTER_NAMES

IDENTITY = Identity("9.8.7", "abc123")
MAIN = LoadRating("main", Wiring.THREE_PHASE_4W, 65.0, 276.0)
HVAC = LoadRating("hvac", Wiring.SINGLE_PHASE, 120.0, 276.0)


def three_phase_values(seed: float = 0.0) -> dict[str, float]:
    """A plausible three-phase load's instantaneous values."""
    v = {"v_l1": 230.1 + seed, "v_l2": 231.2, "v_l3": 229.3}
    v |= {"v_l12": 399.5, "v_l23": 400.1, "v_l31": 398.7, "v_ln_sys": 230.2, "v_ll_sys": 399.4}
    v |= {"i_l1": 10.25, "i_l2": 11.5, "i_l3": 9.75, "i_n": 1.2, "i_sys": 10.5}
    v |= {"p_l1": 2100.5, "p_l2": 2300.25, "p_l3": -1900.75, "p_sys": 2500.0}
    v |= {"q_l1": 300.0, "q_l2": -250.0, "q_l3": 120.0, "q_sys": 170.0}
    v |= {"s_l1": 2360.0, "s_l2": 2660.0, "s_l3": 2240.0, "s_sys": 7260.0}
    v |= {"pf_l1": 0.89, "pf_l2": 0.865, "pf_l3": -0.848, "pf_sys": 0.344, "freq": 50.02}
    v |= {f"thd_{x}": 2.5 for x in ("i_l1", "i_l2", "i_l3", "v_l1", "v_l2", "v_l3")}
    return v


def counters(scale: float = 1.0) -> dict[str, float]:
    """Every counter, each a distinct value."""
    return {name: round(scale * (123.456 + 10 * k), 3) for k, name in enumerate(COUNTER_NAMES)}


def reading(load: str = "main", wiring: Wiring = Wiring.THREE_PHASE_4W, **extra: float) -> Reading:
    """A reading of ``load`` now with the values above (``extra`` replaces some)."""
    values = three_phase_values() | extra
    if wiring is Wiring.SINGLE_PHASE:
        values = {
            k: x for k, x in values.items() if not k.endswith(("_l2", "_l3", "l12", "l23", "l31"))
        }
    return Reading(
        load=load,
        wiring=wiring,
        timestamp_s=time.time(),
        duration_s=1.0,
        windows=5,
        values=values,
        minimum=values,
        maximum=values,
        counters=counters(),
        tariff=2,
        partial_running=True,
    )


@contextmanager
def serving(config: ModbusConfig | None = None, bus: Bus | None = None) -> Iterator[ModbusGateway]:
    """A gateway on 127.0.0.1 and any free port serving ``main`` and ``hvac``."""
    bus = bus or Bus()
    bus.publish(reading())
    bus.publish(reading("hvac", Wiring.SINGLE_PHASE))
    config = config or ModbusConfig(tcp_enabled=True, bind_address="127.0.0.1", tcp_port=0)
    gateway = ModbusGateway(bus)
    try:
        gateway.apply(config, [MAIN, HVAC], IDENTITY)
        yield gateway
    finally:
        gateway.stop()


def request(transaction: int, unit: int, pdu: bytes) -> bytes:
    """A Modbus TCP frame."""
    return struct.pack(">HHHB", transaction, 0, len(pdu) + 1, unit) + pdu


def read_pdu(function: int, address: int, count: int) -> bytes:
    """An FC 3 / FC 4 request PDU."""
    return struct.pack(">BHH", function, address, count)


def recv_frame(sock: socket.socket) -> tuple[int, int, bytes]:
    """One response: transaction id, unit id, PDU."""
    header = recv_exactly(sock, 7)
    transaction, protocol, length, unit = struct.unpack(">HHHB", header)
    assert protocol == 0
    return transaction, unit, recv_exactly(sock, length - 1)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """``n`` bytes, or AssertionError if the server closes first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"closed after {len(data)} of {n} bytes"
        data += chunk
    return data


def connect(gateway: ModbusGateway, timeout_s: float = 5.0) -> socket.socket:
    """A TCP connection to the gateway."""
    assert gateway.address is not None
    sock = socket.create_connection(("127.0.0.1", gateway.address[1]), timeout=timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def is_closed(sock: socket.socket, timeout_s: float = 5.0) -> bool:
    """Whether the server closed the connection (reads EOF or a reset within the timeout)."""
    sock.settimeout(timeout_s)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
