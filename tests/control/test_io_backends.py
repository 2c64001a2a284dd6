"""The digital I/O backends beyond the simulated one, as the controller uses them: GPIO lines
(against the kernel's gpio-sim when it offers one, and their errors everywhere), a remote I/O
module over Modbus TCP (a real server on 127.0.0.1), and a backend that cannot be opened."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from test_controller import Commands

from emsbox.app import open_io
from emsbox.bus import Bus
from emsbox.control import controller as controller_module
from emsbox.control.config import IoConfig
from emsbox.control.controller import ControlError, Controller
from emsbox.control.gpio import open_gpio
from emsbox.control.io import IoError, SimulatedIO
from emsbox.testing.io_module import IoModule

GPIO_SIM = Path("/sys/kernel/config/gpio-sim")


def until(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.01)


@pytest.fixture
def make_controller(tmp_path):
    made = []

    def make(open_io=None) -> Controller:
        commands = Commands()
        c = Controller(Bus(), commands, tmp_path, open_io=open_io)
        c.commands = commands  # type: ignore[attr-defined]
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def gpio(**settings) -> IoConfig:
    return IoConfig(backend="gpio", **settings)


# -- GPIO: the errors, everywhere ---------------------------------------------------------------


def test_a_missing_gpio_chip_is_one_clear_error():
    with pytest.raises(IoError, match=r"^/dev/gpiochip97: no such GPIO chip$"):
        open_gpio(gpio(gpio_chip="/dev/gpiochip97"))


def test_a_device_that_is_no_gpio_chip_is_one_clear_error():
    with pytest.raises(IoError, match=r"^/dev/null: not a GPIO chip$"):
        open_gpio(gpio(gpio_chip="/dev/null"))


def test_without_the_gpiod_package_gpio_says_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "gpiod", None)  # import gpiod raises ImportError
    with pytest.raises(IoError, match="GPIO needs the gpiod package"):
        open_gpio(gpio())


def test_the_controller_shows_a_gpio_backend_that_cannot_be_opened_and_keeps_running(
    make_controller,
):
    c = make_controller()
    c.apply(gpio(gpio_chip="/dev/gpiochip97", input_function="partial_run"), "main")
    state = c.state()
    assert state.backend == "gpio"
    assert not state.backend_ok
    assert state.backend_error == "/dev/gpiochip97: no such GPIO chip"
    assert not state.input_closed and not state.input_active
    with pytest.raises(ControlError, match="only a simulated input"):
        c.set_input(True, "tester")
    time.sleep(0.1)  # ticks go on without commands
    assert c.commands.calls == []
    c.apply(IoConfig(), "main")  # back to simulated: working again
    assert c.state().backend_ok and c.state().backend_error is None


def test_a_backend_that_could_not_be_opened_is_tried_again(make_controller, monkeypatch):
    monkeypatch.setattr(controller_module, "REOPEN_S", 0.05)
    attempts = []

    def flaky(config: IoConfig) -> SimulatedIO:
        attempts.append(config.backend)
        if len(attempts) < 3:
            raise IoError(f"not yet ({len(attempts)})")
        return SimulatedIO()

    c = make_controller(open_io=flaky)
    c.apply(gpio(), "main")
    assert c.state().backend_error == "not yet (1)"
    until(lambda: c.state().backend_ok)
    assert len(attempts) == 3


def test_the_backend_stays_open_while_its_own_settings_are_unchanged(make_controller):
    opened: list[Backend] = []

    def factory(config: IoConfig) -> Backend:
        opened.append(Backend())
        return opened[-1]

    c = make_controller(open_io=factory)
    c.apply(gpio(), "main")
    c.apply(gpio(input_debounce_s=0.2, modbus_port=1502), "main")  # not the backend's settings
    assert len(opened) == 1 and not opened[0].closed
    c.apply(gpio(gpio_output_line=5), "main")
    assert len(opened) == 2 and opened[0].closed and not opened[1].closed
    c.close()
    assert opened[1].closed


class Backend(SimulatedIO):
    """A simulated backend that remembers being closed."""

    closed = False

    def close(self) -> None:
        self.closed = True


# -- GPIO against the kernel's simulator, where it has one --------------------------------------


@pytest.fixture
def sim_chip():
    """A gpio-sim chip of 4 lines: (its device, its lines' sysfs directory)."""
    if not GPIO_SIM.is_dir():
        pytest.skip("the kernel offers no gpio-sim (configfs) here")
    device = GPIO_SIM / f"emsbox-test-{os.getpid()}"
    bank = device / "bank0"
    try:
        device.mkdir()
        bank.mkdir()
        (bank / "num_lines").write_text("4")
        (device / "live").write_text("1")
    except OSError as exc:
        if bank.exists():
            bank.rmdir()
        if device.exists():
            device.rmdir()
        pytest.skip(f"cannot make a gpio-sim chip: {exc}")
    chip = (bank / "chip_name").read_text().strip()
    lines = Path("/sys/devices/platform") / (device / "dev_name").read_text().strip() / chip
    try:
        yield f"/dev/{chip}", lines
    finally:
        (device / "live").write_text("0")
        bank.rmdir()
        device.rmdir()


def test_gpio_lines_of_a_simulated_chip(sim_chip):
    chip, lines = sim_chip
    backend = open_gpio(gpio(gpio_chip=chip, gpio_input_line=0, gpio_output_line=1))
    try:
        assert backend.health() is None
        assert backend.read_input() is False  # the pull-up holds it high: open
        (lines / "sim_gpio0" / "pull").write_text("pull-down")  # a contact to ground
        assert backend.read_input() is True
        backend.write_output(True)
        assert (lines / "sim_gpio1" / "value").read_text().strip() == "1"
        backend.write_output(False)
        assert (lines / "sim_gpio1" / "value").read_text().strip() == "0"
        with pytest.raises(IoError, match=r"line 0 \(input\) is in use by emsbox"):
            open_gpio(gpio(gpio_chip=chip, gpio_input_line=0, gpio_output_line=2))
    finally:
        backend.close()
    with pytest.raises(IoError, match="has lines 0 to 3: no output line 9"):
        open_gpio(gpio(gpio_chip=chip, gpio_input_line=0, gpio_output_line=9))


def test_an_active_low_output_drives_its_line_low_to_close(sim_chip):
    chip, lines = sim_chip
    backend = open_gpio(gpio(gpio_chip=chip, gpio_output_line=2, gpio_output_active_low=True))
    try:
        backend.write_output(True)
        assert (lines / "sim_gpio2" / "value").read_text().strip() == "0"
    finally:
        backend.close()


# -- a remote I/O module over Modbus TCP ----------------------------------------------------


def modbus(module: IoModule, **settings) -> IoConfig:
    return IoConfig(
        backend="modbus",
        modbus_host="127.0.0.1",
        modbus_port=module.port,
        modbus_poll_interval_s=0.02,
        input_debounce_s=0.02,
        **settings,
    )


def test_a_modbus_input_runs_the_partial_counters(make_controller):
    with IoModule() as module:
        c = make_controller(open_io=open_io)
        c.apply(modbus(module, input_function="partial_run", modbus_input_address=4), "main")
        until(lambda: c.state().backend_ok)
        assert c.state().backend == "modbus"
        module.set_input(4, True)
        until(lambda: c.commands.calls == [("main", "start", None, "digital input")])
        assert c.state().input_closed and c.state().input_active
        module.set_input(4, False)
        until(lambda: len(c.commands.calls) == 2)
        assert c.commands.calls[1] == ("main", "stop", None, "digital input")
        with pytest.raises(ControlError, match="only a simulated input"):
            c.set_input(True, "tester")


def test_the_remote_output_sets_the_modules_coil(make_controller):
    with IoModule() as module:
        c = make_controller(open_io=open_io)
        c.apply(modbus(module, output_function="remote", modbus_output_address=3), "main")
        c.set_output(True, "tester")
        until(lambda: module.coil(3))
        c.set_output(False, "tester")
        until(lambda: not module.coil(3))


def test_a_module_that_stops_answering_is_shown_and_the_input_kept(make_controller):
    module = IoModule()
    module.start()
    try:
        c = make_controller(open_io=open_io)
        c.apply(modbus(module, input_function="status"), "main")
        module.set_input(0, True)
        until(lambda: c.state().input_active)
        module.stop()
        until(lambda: not c.state().backend_ok)
        state = c.state()
        assert f"remote I/O module 127.0.0.1:{module.port}" in state.backend_error
        assert state.input_closed and state.input_active
        module.start()
        until(lambda: c.state().backend_ok)
    finally:
        module.stop()
