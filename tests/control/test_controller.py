"""The controller's loop with the simulated input and output: every input function through
the command queue, the remote and pulse outputs, and the pulse count across a restart."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import Future

import pytest

from emsbox.bus import Bus, Reading
from emsbox.control.config import IoConfig
from emsbox.control.controller import ControlError, Controller
from emsbox.control.io import SimulatedIO
from emsbox.samples import Wiring


class Commands:
    """Records each command and answers like the service."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int | None, str]] = []

    def __call__(self, load: str, action: str, tariff: int | None, by: str) -> Future[object]:
        self.calls.append((load, action, tariff, by))
        done: Future[object] = Future()
        done.set_result({})
        return done


def until(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.01)


def reading(kwh: float, load: str = "main") -> Reading:
    return Reading(load, Wiring.SINGLE_PHASE, time.time(), 1.0, 5, {}, {}, {}, {"kwh_imp": kwh})


@pytest.fixture
def controller(tmp_path):
    commands = Commands()
    c = Controller(Bus(), commands, tmp_path)
    c.commands = commands  # type: ignore[attr-defined]
    try:
        yield c
    finally:
        c.stop()


def test_a_tariff_input_selects_the_tariff_through_the_command_queue(controller):
    controller.apply(IoConfig(input_function="tariff", input_debounce_s=0.02), "main")
    controller.set_input(True, "tester")
    until(lambda: controller.commands.calls)
    assert controller.commands.calls == [("main", "tariff", 2, "digital input")]
    assert controller.state().input_closed and controller.state().input_active
    controller.set_input(False, "tester")
    until(lambda: len(controller.commands.calls) == 2)
    assert controller.commands.calls[1] == ("main", "tariff", 1, "digital input")


def test_a_reset_input_resets_once_per_closing_on_the_configured_load(controller):
    config = IoConfig(input_function="partial_reset", input_load="hvac", input_debounce_s=0.0)
    controller.apply(config, "main")
    controller.set_input(True, "tester")
    until(lambda: controller.commands.calls)
    time.sleep(0.2)
    controller.set_input(False, "tester")
    time.sleep(0.1)
    assert controller.commands.calls == [("hvac", "reset", None, "digital input")]


def test_a_bounce_shorter_than_the_debounce_time_does_nothing(controller):
    controller.apply(IoConfig(input_function="partial_run", input_debounce_s=0.5), "main")
    controller.set_input(True, "tester")
    time.sleep(0.1)
    controller.set_input(False, "tester")
    time.sleep(0.7)
    assert controller.commands.calls == []
    assert not controller.state().input_active


def test_the_remote_output_is_switched_and_refused_otherwise(controller):
    controller.apply(IoConfig(), "main")
    with pytest.raises(ControlError, match="function is off, not remote"):
        controller.set_output(True, "tester")
    controller.apply(IoConfig(output_function="remote", output_normally_closed=True), "main")
    until(lambda: controller.state().output_closed)  # normally closed: closed at rest
    assert not controller.state().output_on
    controller.set_output(True, "tester")
    until(lambda: controller.state().output_on)
    assert not controller.state().output_closed


def test_the_pulse_output_counts_the_energy_and_continues_after_a_restart(tmp_path):
    bus = Bus()
    config = IoConfig(output_function="pulse", pulses_per_kwh=1000, pulse_width_s=0.03)
    first = Controller(bus, Commands(), tmp_path)
    bus.publish(reading(500.0))
    first.apply(config, "main")
    time.sleep(0.1)
    bus.publish(reading(500.01))  # 10 Wh: 10 pulses, once the float difference is floored
    owed = math.floor((500.01 - 500.0) * 1000)
    until(lambda: first.state().pulses == owed)
    assert first.state().pulses_waiting == 0
    assert first.state().max_pulse_power_kw == pytest.approx(60.0)
    first.stop()
    # A restart: the count continues from the saved state, nothing given twice.
    second = Controller(bus, Commands(), tmp_path)
    second.apply(config, "main")
    time.sleep(0.2)
    assert second.state().pulses == owed
    bus.publish(reading(500.02))
    until(lambda: second.state().pulses == math.floor((500.02 - 500.0) * 1000))
    assert second.state().pulses >= 19
    second.stop()


def test_a_changed_constant_starts_the_count_afresh(tmp_path):
    bus = Bus()
    bus.publish(reading(10.0))
    c = Controller(bus, Commands(), tmp_path)
    c.apply(IoConfig(output_function="pulse", pulses_per_kwh=100, pulse_width_s=0.03), "main")
    time.sleep(0.1)  # the count starts from the counter the first tick sees
    bus.publish(reading(10.0625))
    until(lambda: c.state().pulses == 6)
    c.apply(IoConfig(output_function="pulse", pulses_per_kwh=1000, pulse_width_s=0.03), "main")
    time.sleep(0.2)
    assert c.state().pulses == 0
    c.stop()


def test_a_loop_stuck_in_a_tick_ends_after_it_and_never_runs_beside_the_new_one(tmp_path):
    from emsbox.control import controller as controller_module

    release = threading.Event()
    ticks: list[str] = []

    class SlowIO(SimulatedIO):
        """The first read hangs until released, like a backend stuck in a driver."""

        def read_input(self) -> bool:
            ticks.append(threading.current_thread().name)
            if len(ticks) == 1:
                release.wait(10)
            return False

    c = Controller(Bus(), Commands(), tmp_path)
    c._io = SlowIO()
    old_waits = (controller_module.STOP_WAIT_S, controller_module.STOP_LONG_WAIT_S)
    controller_module.STOP_WAIT_S = controller_module.STOP_LONG_WAIT_S = 0.1
    try:
        c.apply(IoConfig(), "main")
        deadline = time.monotonic() + 5
        while not ticks:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        c.apply(IoConfig(input_debounce_s=0.2), "main")  # stop() gives up waiting
        release.set()
        time.sleep(0.3)
        alive = [t for t in threading.enumerate() if t.name == "controller"]
        assert len(alive) == 1  # the stuck loop ended after its tick
    finally:
        controller_module.STOP_WAIT_S, controller_module.STOP_LONG_WAIT_S = old_waits
        release.set()
        c.close()
