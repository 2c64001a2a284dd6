"""A remote I/O module over Modbus TCP, against a real server on 127.0.0.1: the client's bit
reads and coil write, and the backend that polls the input and sets the output in a thread of
its own, through the module failing and coming back."""

from __future__ import annotations

import time

import pytest

from emsbox.gateways.modbus.client import ModbusClientError, TcpClient
from emsbox.gateways.modbus.remote_io import RemoteIO
from emsbox.testing.io_module import IoModule

DEADLINE_S = 10.0


def until(predicate, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.01)


@pytest.fixture
def module():
    with IoModule(coils=16, discrete_inputs=16) as m:
        yield m


@pytest.fixture
def remote(module):
    backends = []

    def make(**settings) -> RemoteIO:
        settings = {"poll_interval_s": 0.02, "retry_max_s": 0.2} | settings
        backend = RemoteIO("127.0.0.1", module.port, 1, **settings)
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.close()


# -- the client -------------------------------------------------------------------------------


def test_bits_are_read_least_significant_first_across_bytes(module):
    for address in (0, 3, 9):
        module.set_input(address, True)
    module.set_coil(15, True)
    client = TcpClient("127.0.0.1", module.port)
    try:
        bits = client.read_bits(7, 0, 10)
        assert [k for k, bit in enumerate(bits) if bit] == [0, 3, 9]
        assert client.read_bits(7, 14, 2, function=1) == [False, True]
        client.write_coil(7, 2, True)
        assert module.coil(2) and client.read_bits(7, 2, 1, function=1) == [True]
        client.write_coil(7, 2, False)
        assert not module.coil(2)
        assert module.coil_writes == [(2, True), (2, False)]
    finally:
        client.close()


def test_an_exception_answer_is_one_clear_error_with_its_code(module):
    client = TcpClient("127.0.0.1", module.port)
    try:
        with pytest.raises(ModbusClientError, match=r"exception 02 \(illegal data address\)") as e:
            client.read_bits(1, 15, 2)
        assert e.value.code == 2
        with pytest.raises(ModbusClientError, match="illegal data address"):
            client.write_coil(1, 16, True)
        # The connection stays usable after an exception answer.
        assert client.read_bits(1, 0, 1) == [False]
    finally:
        client.close()


def test_requests_the_spec_does_not_allow_are_refused_before_sending():
    client = TcpClient("127.0.0.1", 1)
    with pytest.raises(ValueError, match="FC 1 or 2"):
        client.read_bits(1, 0, 1, function=3)
    with pytest.raises(ValueError, match="1 to 2000 bits"):
        client.read_bits(1, 0, 2001)


# -- the backend ------------------------------------------------------------------------------


def test_the_input_follows_the_modules_discrete_input(module, remote):
    backend = remote(input_address=5)
    until(lambda: backend.healthy and backend.read_input() is False)
    module.set_input(5, True)
    until(backend.read_input)
    module.set_input(5, False)
    until(lambda: not backend.read_input())
    assert backend.health() is None


def test_the_input_may_be_a_coil(module, remote):
    backend = remote(input_address=3, input_is_coil=True, output_address=4)
    module.set_coil(3, True)
    until(backend.read_input)


def test_the_output_coil_is_written_once_per_change(module, remote):
    backend = remote(output_address=7)
    for _ in range(50):  # as the controller does, every tick
        backend.write_output(True)
    until(lambda: module.coil(7))
    backend.write_output(False)
    until(lambda: not module.coil(7))
    time.sleep(0.1)  # several polls: nothing more is written
    assert module.coil_writes == [(7, True), (7, False)]


def test_a_module_that_stops_answering_is_reported_and_its_output_set_again_on_return(
    module, remote
):
    backend = remote(input_address=1, output_address=2)
    module.set_input(1, True)
    backend.write_output(True)
    until(lambda: backend.read_input() and module.coil(2))

    module.stop()  # a power loss: connections dropped, coils off
    until(lambda: not backend.healthy)
    error = backend.health()
    assert error is not None and f"127.0.0.1:{module.port}" in error
    assert "\n" not in error
    assert backend.read_input() is True  # the last state read is kept
    backend.write_output(True)  # unchanged: nothing to write while it is away

    module.set_input(1, False)
    module.start()
    until(lambda: backend.healthy)
    until(lambda: module.coil(2))  # written again, though the wanted state did not change
    until(lambda: not backend.read_input())
    assert module.coil_writes.count((2, True)) == 2


def test_an_address_the_module_does_not_have_is_a_clear_error(module, remote):
    backend = remote(input_address=100)
    until(lambda: not backend.healthy)
    assert backend.health() == (
        f"remote I/O module 127.0.0.1:{module.port} unit 1: "
        "discrete input 100: exception 02 (illegal data address)"
    )
    assert backend.read_input() is False


def test_a_coil_the_module_does_not_have_is_a_clear_error(module, remote):
    backend = remote(output_address=40)
    backend.write_output(True)
    until(lambda: not backend.healthy)
    assert "coil 40: exception 02 (illegal data address)" in backend.health()
    module.set_input(0, True)
    until(backend.read_input)  # the input is still read
    assert not backend.healthy


def test_nothing_listening_is_reported_and_close_does_not_wait_for_the_retries():
    probe = IoModule()
    probe.start()
    port = probe.port
    probe.stop()  # a port where nothing listens now
    backend = RemoteIO("127.0.0.1", port, poll_interval_s=0.02, retry_max_s=30.0)
    try:
        until(lambda: not backend.healthy)
        assert "refused" in backend.health().lower()
    finally:
        started = time.monotonic()
        backend.close()
        assert time.monotonic() - started < 5.0


def test_a_host_name_no_lookup_takes_is_reported_and_the_thread_polls_on():
    backend = RemoteIO("io..module.example", 502, poll_interval_s=0.02, retry_max_s=0.05)
    try:
        until(lambda: not backend.healthy)
        assert "is not a host name that can be looked up" in backend.health()
        time.sleep(0.2)
        assert backend._thread.is_alive()  # still trying, and saying why
    finally:
        backend.close()
