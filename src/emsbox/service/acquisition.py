"""Live acquisition: one thread per source, source → meter → counters → bus, paced in real time.

Each publishing cycle (``publish_interval_s``, aligned to the wall clock so that a 1 s store
bucket gets exactly one reading) closes with one consistent ``Reading`` per load: the
cycle's windows aggregated, their extremes, and the counters as they stand after the last
window of the cycle. Counters are saved at least every second. Commands (partial counters,
tariff) come through one queue and are applied between blocks by this thread, which alone
owns the counters.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from emsbox.bus import Publisher, Reading, WindowValues
from emsbox.metering.aggregate import aggregate
from emsbox.metering.energy import CounterState, EnergyCounters, default_start_threshold_w
from emsbox.metering.meter import Meter, MeterLoad, meter_loads
from emsbox.metering.readings import WindowBatch
from emsbox.service.sources import SourcePlan
from emsbox.store.counters import CounterSaver, CounterStore

log = logging.getLogger(__name__)

BLOCK_S = 0.2
SAVE_INTERVAL_S = 0.75
# A source that has not produced a reading for this long is reported unhealthy.
STALE_AFTER_S = 5.0
# The wall clock this far ahead of the measured time: it was set, and readings follow it. (A
# clock set back is not followed: readings keep their time base until the measuring restarts,
# rather than come with times the store already holds.)
CLOCK_STEP_S = 5.0

Action = Literal["start", "stop", "reset", "tariff"]


class CommandError(Exception):
    """A command was refused; the message says why in one line."""


class CommandExpiredError(CommandError):
    """A command reached the acquisition after its deadline, so it was not applied."""


@dataclass
class Command:
    """A change to a load's counters or tariff, from whoever asked (user, token, input)."""

    load: str
    action: Action
    requested_by: str
    tariff: int | None = None
    # time.monotonic() after which the command is refused rather than applied: the caller
    # stops waiting then and reports it as not applied, so it must never be applied later.
    # CLOCK_MONOTONIC is one clock for every process of the machine.
    deadline_s: float | None = None
    result: Future[dict[str, float | int | bool]] = field(default_factory=Future)


@dataclass
class _Cycle:
    """The windows of one load gathered for the current publishing cycle."""

    batches: list[WindowBatch] = field(default_factory=list)

    def add(self, batch: WindowBatch) -> None:
        if batch.n_windows:
            self.batches.append(batch)


def _slice(batch: WindowBatch, a: int, b: int) -> WindowBatch:
    return WindowBatch(
        batch.load,
        batch.wiring,
        batch.start_s[a:b],
        batch.duration_s[a:b],
        {k: v[a:b] for k, v in batch.values.items()},
    )


def _fresh_counters(load: MeterLoad, saved: CounterState | None, volts: float) -> EnergyCounters:
    threshold = default_start_threshold_w(load.wiring, volts)
    if saved is None:
        return EnergyCounters(load.wiring, threshold)
    if saved.wiring is load.wiring:
        return EnergyCounters.from_state(saved, threshold)
    # The wiring changed: the old counters do not fit. New ones continue the saved sequence,
    # because the counter store refuses a state that looks older than the one it holds.
    log.warning(
        "load %s: counters restart at zero, the wiring changed from %s to %s",
        load.name,
        saved.wiring.value,
        load.wiring.value,
    )
    fresh = EnergyCounters(load.wiring, threshold).state()
    return EnergyCounters.from_state(
        fresh.model_copy(update={"sequence": saved.sequence + 1}), threshold
    )


class LiveAcquisition:
    """Runs one source in its own thread until stopped."""

    def __init__(
        self,
        plan: SourcePlan,
        bus: Publisher,
        counters_path: Path,
        publish_interval_s: float = 1.0,
        *,
        realtime: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._plan = plan
        self._source = plan.source
        self._bus = bus
        self._counters_path = counters_path
        self._interval = publish_interval_s
        self._realtime = realtime
        self._clock = clock
        self._meter_loads = meter_loads(
            self._source.loads, self._source.channels, plan.split_single_phase
        )
        self._commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tariff: dict[str, int] = {load.name: 1 for load in self._meter_loads}
        self.last_error: str | None = None
        self.last_reading_s: float | None = None
        self.readings = 0

    @property
    def loads(self) -> tuple[MeterLoad, ...]:
        """The meter loads this source feeds."""
        return tuple(self._meter_loads)

    def start(self) -> None:
        """Start the acquisition thread."""
        self._thread = threading.Thread(
            target=self._run, name=f"acquisition-{self._meter_loads[0].name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread; the counters are saved before it ends."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._source.close()

    def submit(self, command: Command) -> Future[dict[str, float | int | bool]]:
        """Queue a command for this thread; the future gives the load's new counters."""
        if self._thread is None or not self._thread.is_alive():
            command.result.set_running_or_notify_cancel()
            command.result.set_exception(CommandError("the load's acquisition is not running"))
        else:
            self._commands.put(command)
        return command.result

    def healthy(self) -> bool:
        """Whether readings are flowing."""
        if self._thread is None or not self._thread.is_alive():
            return False
        last = self.last_reading_s
        return last is not None and self._clock() - last < STALE_AFTER_S

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # the supervisor reports it; the service keeps running
            self.last_error = " ".join(str(exc).split()) or type(exc).__name__
            log.exception("acquisition of %s stopped", self._meter_loads[0].name)

    def _loop(self) -> None:
        source = self._source
        rate = source.sample_rate_hz
        meter = Meter(self._meter_loads, rate)
        store = CounterStore(self._counters_path, CounterState.from_json)
        counters = {
            ml.name: _fresh_counters(ml, store.load(ml.name), self._plan.nominal_voltage_v)
            for ml in self._meter_loads
        }
        saver = CounterSaver(store, interval_s=SAVE_INTERVAL_S)
        block = max(1, round(BLOCK_S * rate))
        cycles = {name: _Cycle() for name in counters}
        offset_s: float | None = None  # wall-clock time minus source time
        cycle_end: float | None = None
        started = time.monotonic()
        received = 0
        try:
            while not self._stop.is_set():
                self._apply_commands(counters)
                samples = source.read(block)
                if samples is None:
                    break
                if offset_s is None:
                    offset_s = self._clock() - samples.start_s
                    cycle_end = self._next_boundary(samples.start_s + offset_s)
                elif self._realtime:
                    block_end = samples.start_s + samples.n_samples / rate + offset_s
                    ahead = self._clock() - block_end
                    if ahead >= CLOCK_STEP_S:
                        # The clock was set forward (NTP at the boot of a device without a
                        # battery-backed clock): the cycles under way close at their old
                        # times, and readings from now on carry the clock's time.
                        assert cycle_end is not None
                        for name in cycles:
                            self._publish(name, cycles, counters, cycle_end)
                        offset_s += ahead
                        cycle_end = self._next_boundary(samples.start_s + offset_s)
                        log.warning("the clock was set %+.0f s: readings follow it", ahead)
                assert cycle_end is not None
                received += samples.n_samples
                fast = self._bus.has_fast_subscribers()
                for batch in meter.process(samples):
                    if not batch.n_windows:
                        continue
                    ends = batch.start_s + batch.duration_s + offset_s
                    a = 0
                    while a < batch.n_windows:
                        b = int(np.searchsorted(ends, cycle_end, side="right"))
                        b = max(b, a)
                        if b > a:
                            part = _slice(batch, a, b)
                            counters[batch.load].integrate(part, self._tariff[batch.load])
                            cycles[batch.load].add(part)
                            if fast:
                                self._publish_windows(part, offset_s)
                        if b >= batch.n_windows:
                            break
                        # A window ends past the cycle: close the cycle of this load.
                        self._publish(batch.load, cycles, counters, cycle_end)
                        cycle_end = self._advance(cycles, counters, cycle_end, float(ends[b]))
                        a = b
                now = time.monotonic()
                if saver.due(now):  # states are built only when they are saved
                    saver.maybe_save({k: c.state() for k, c in counters.items()}, now)
                if self._realtime:
                    ahead = started + received / rate - time.monotonic()
                    if ahead > 0:
                        self._stop.wait(ahead)
        finally:
            saver.flush({k: c.state() for k, c in counters.items()})
            store.close()
            self._fail_pending_commands()

    def _advance(
        self,
        cycles: dict[str, _Cycle],
        counters: dict[str, EnergyCounters],
        cycle_end: float,
        window_end: float,
    ) -> float:
        """Close the other loads' cycles too, and move to the cycle holding ``window_end``."""
        for name in cycles:
            self._publish(name, cycles, counters, cycle_end)
        return max(cycle_end + self._interval, self._next_boundary(window_end - 1e-9))

    def _next_boundary(self, t: float) -> float:
        return (math.floor(t / self._interval) + 1) * self._interval

    def _publish(
        self,
        name: str,
        cycles: dict[str, _Cycle],
        counters: dict[str, EnergyCounters],
        cycle_end: float,
    ) -> None:
        batches = cycles[name].batches
        if not batches:
            return
        cycles[name] = _Cycle()
        load_counters = counters[name]
        values = aggregate(batches)
        minimum = {k: float(min(np.min(b.values[k]) for b in batches)) for k in values}
        maximum = {k: float(max(np.max(b.values[k]) for b in batches)) for k in values}
        reading = Reading(
            load=name,
            wiring=batches[0].wiring,
            timestamp_s=cycle_end,
            duration_s=float(sum(np.sum(b.duration_s) for b in batches)),
            windows=sum(b.n_windows for b in batches),
            values=values,
            minimum=minimum,
            maximum=maximum,
            counters=load_counters.snapshot(),
            tariff=self._tariff[name],
            partial_running=load_counters.partial_running,
        )
        self._bus.publish(reading)
        self.readings += 1
        self.last_reading_s = self._clock()

    def _publish_windows(self, batch: WindowBatch, offset_s: float) -> None:
        for j in range(batch.n_windows):
            self._bus.publish(
                WindowValues(
                    batch.load,
                    float(batch.start_s[j]) + offset_s,
                    float(batch.duration_s[j]),
                    batch.window(j),
                )
            )

    def _apply_commands(self, counters: Mapping[str, EnergyCounters]) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            if not command.result.set_running_or_notify_cancel():
                continue  # the caller gave up waiting: the command is not applied
            if command.deadline_s is not None and time.monotonic() > command.deadline_s:
                command.result.set_exception(
                    CommandExpiredError("the load's acquisition did not answer in time")
                )
                continue
            load = counters.get(command.load)
            if load is None:
                command.result.set_exception(CommandError(f"no load named {command.load!r}"))
                continue
            if command.action == "start":
                load.start_partial()
            elif command.action == "stop":
                load.stop_partial()
            elif command.action == "reset":
                load.reset_partial()
            elif command.tariff in (1, 2):
                self._tariff[command.load] = command.tariff
            else:
                command.result.set_exception(CommandError("tariff must be 1 or 2"))
                continue
            log.info(
                "load %s: %s%s by %s",
                command.load,
                command.action,
                f" {command.tariff}" if command.action == "tariff" else " partial counters",
                command.requested_by,
            )
            command.result.set_result(
                {
                    **load.snapshot(),
                    "tariff": self._tariff[command.load],
                    "partial_running": load.partial_running,
                }
            )

    def _fail_pending_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            if command.result.set_running_or_notify_cancel():
                command.result.set_exception(CommandError("the service is stopping"))
