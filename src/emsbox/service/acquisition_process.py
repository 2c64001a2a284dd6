"""Acquisition in a process of its own, so that measuring never holds up the web server.

The meter is CPU-bound Python and numpy. In the service's own process its bursts (every
block, every publishing cycle) hold the interpreter lock and delay HTTP responses by several
milliseconds. Here a child process opens the sources and runs one ``LiveAcquisition`` per
source exactly as it runs in-process; every reading (and every fast window while someone
subscribes to them) comes back through a pipe, and a thread of the service publishes it on
the service's bus. Commands go the other way and come back with their outcome.

The child alone owns and saves the counters. When the pipe closes (the service stopped, or
was killed) it stops its sources and saves the counters one last time; SIGTERM does the same.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import itertools
import logging
import multiprocessing
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TextIO

from emsbox.bus import Bus, Message, Reading
from emsbox.loads import MeterConfig
from emsbox.metering.meter import MeterLoad
from emsbox.service.acquisition import (
    STALE_AFTER_S,
    Command,
    CommandError,
    CommandExpiredError,
    LiveAcquisition,
)
from emsbox.service.sources import build_sources
from emsbox.sources.base import SourceError

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Opening a recording or importing numpy on a slow SD card can take a while.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
# How long a clean end of the child may precede the service's own stop (SIGTERM to both).
STOP_NOTICE_S = 2.0
POLL_S = 0.2
# How long a new acquisition process waits for the one of a killed service to save and end.
LOCK_WAIT_S = 10.0
CHILD_ENTRY = "from emsbox.service.acquisition_process import child_main; child_main"
# glibc's M_MMAP_THRESHOLD: a fixed threshold stops glibc from raising it after numpy frees a
# large array, which would leave later arrays fragmenting the heap (about 16 MB here).
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 128 * 1024

CommandResult = dict[str, float | int | bool]


@dataclass(frozen=True)
class AcquisitionSpec:
    """Everything the child needs to open the sources and run them."""

    meter: MeterConfig
    data_dir: Path
    counters_path: Path
    utc_offset_h: float
    log_level: int = logging.INFO
    lock_wait_s: float = LOCK_WAIT_S


class RemoteAcquisition:
    """The service's view of one source running in the acquisition process."""

    def __init__(self, process: AcquisitionProcess, index: int, loads: tuple[MeterLoad, ...]):
        self._process = process
        self._index = index
        self.loads = loads
        self.last_error: str | None = None
        self.last_reading_s: float | None = None
        self.readings = 0

    def submit(self, command: Command) -> Future[CommandResult]:
        """Send a command to the thread that owns these loads' counters."""
        return self._process.submit(self._index, command)

    def healthy(self) -> bool:
        """Whether readings are flowing."""
        last = self.last_reading_s
        return (
            self.last_error is None
            and self._process.alive()
            and last is not None
            and time.time() - last < STALE_AFTER_S
        )


class AcquisitionProcess:
    """Starts, feeds and stops the child process that measures every configured load."""

    def __init__(self, spec: AcquisitionSpec, bus: Bus) -> None:
        self._spec = spec
        self._bus = bus
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._pending: dict[int, Future[CommandResult]] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._stopping = False
        self._receiver: threading.Thread | None = None
        self._sources: list[RemoteAcquisition] = []
        self._by_load: dict[str, RemoteAcquisition] = {}

    def start(self) -> list[RemoteAcquisition]:
        """Start the child and wait until its sources are open (SourceError if they cannot be)."""
        conn, child_conn = multiprocessing.Pipe()
        # A fresh interpreter rather than a fork (the service already runs threads whose locks
        # a fork would copy) and rather than multiprocessing's spawn, which adds a process of
        # its own (the resource tracker) that this child does not need.
        fd = child_conn.fileno()
        proc = subprocess.Popen(
            [sys.executable, "-c", f"{CHILD_ENTRY}({fd})"], pass_fds=(fd,), close_fds=True
        )
        child_conn.close()
        self._proc, self._conn = proc, conn
        try:
            conn.send(self._spec)
            if not conn.poll(START_TIMEOUT_S):
                raise SourceError(
                    f"the acquisition process did not start within {START_TIMEOUT_S:.0f} s"
                )
            first = conn.recv()
        except (EOFError, OSError):
            self._end_child()
            raise SourceError(
                f"the acquisition process ended while starting (exit code {proc.returncode})"
            ) from None
        except SourceError:
            self._end_child()
            raise
        if first[0] == "refused":
            self._end_child()
            raise SourceError(first[1])
        for index, loads in enumerate(first[1]):
            remote = RemoteAcquisition(self, index, tuple(loads))
            self._sources.append(remote)
            for load in remote.loads:
                self._by_load[load.name] = remote
        self._receiver = threading.Thread(target=self._receive, name="acquisition-feed")
        self._receiver.start()
        return list(self._sources)

    def alive(self) -> bool:
        """Whether the child process runs."""
        return self._proc is not None and self._proc.poll() is None and not self._closed

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Ask the child to stop (it saves the counters) and wait for its last readings."""
        self._stopping = True
        if self._proc is None:
            return
        with contextlib.suppress(CommandError):  # already gone
            self._send(("stop",))
        if self._receiver is not None:
            self._receiver.join(timeout_s)
        self._end_child(timeout_s)

    def submit(self, index: int, command: Command) -> Future[CommandResult]:
        """Send ``command`` to source ``index``; the future gives the load's new counters."""
        future = command.result
        if not future.set_running_or_notify_cancel():
            return future  # the caller gave up before it was sent
        with self._lock:
            if self._closed:
                future.set_exception(CommandError("the load's acquisition is not running"))
                return future
            command_id = next(self._ids)
            self._pending[command_id] = future
        fields = (command.load, command.action, command.requested_by, command.tariff)
        try:
            self._send(("command", command_id, index, *fields, command.deadline_s))
        except CommandError as exc:
            with self._lock:
                self._pending.pop(command_id, None)
            future.set_exception(exc)
        return future

    # -- the service's side of the pipe --------------------------------------------------

    def _send(self, item: tuple[Any, ...]) -> None:
        assert self._conn is not None
        with self._send_lock:
            try:
                self._conn.send(item)
            except (OSError, ValueError):
                raise CommandError("the load's acquisition is not running") from None

    def _receive(self) -> None:
        assert self._conn is not None
        fast = False
        try:
            while True:
                if self._conn.poll(POLL_S):
                    item = self._conn.recv()
                    if item[0] == "stopped":
                        break
                    self._handle(item)
                wanted = self._bus.has_fast_subscribers()
                if wanted != fast:
                    fast = wanted
                    self._send(("fast", fast))
        except (EOFError, OSError, CommandError):
            pass  # the child ended; reported below
        finally:
            self._close()

    def _handle(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "message":
            message: Message = item[1]
            self._bus.publish(message)
            if isinstance(message, Reading):
                remote = self._by_load.get(message.load)
                if remote is not None:
                    remote.readings += 1
                    remote.last_reading_s = time.time()
        elif kind == "result":
            _, command_id, value, error, expired = item
            with self._lock:
                future = self._pending.pop(command_id, None)
            if future is None:
                return
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(CommandExpiredError(error) if expired else CommandError(error))
        elif kind == "failed":
            self._sources[item[1]].last_error = item[2]

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            pending = list(self._pending.values())
            self._pending.clear()
        for future in pending:
            future.set_exception(CommandError("the load's acquisition stopped"))
        if not self._stopping:
            code = None
            if self._proc is not None:
                # The pipe closes a moment before the process can be reaped.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = self._proc.wait(2.0)
            if code == 0 and self._stop_follows():
                # SIGTERM to the whole process group (a service manager, `timeout`): the
                # child stopped at once, a moment before this process began its own stop.
                return
            reason = "the acquisition process ended" + (
                f" (exit code {code})" if code is not None else ""
            )
            log.error("%s; the loads it measured are unhealthy", reason)
            for remote in self._sources:
                remote.last_error = remote.last_error or reason

    def _stop_follows(self, wait_s: float = STOP_NOTICE_S) -> bool:
        """Whether this side is asked to stop within ``wait_s`` (then the child's end was
        part of stopping the whole service)."""
        deadline = time.monotonic() + wait_s
        while not self._stopping:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _end_child(self, timeout_s: float = 5.0) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.error("the acquisition process did not stop in time; killing it")
            proc.kill()
            proc.wait()
        if self._conn is not None:
            self._conn.close()


# -- the child ---------------------------------------------------------------------------


class _PipePublisher:
    """The child's stand-in for the bus: everything published goes down the pipe."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.fast = False
        self.broken = False

    def publish(self, message: Message) -> None:
        """Send a reading or a fast window to the service."""
        self.send(("message", message))

    def has_fast_subscribers(self) -> bool:
        """Whether the service has subscribers of fast windows (it tells us when it changes)."""
        return self.fast

    def send(self, item: tuple[Any, ...]) -> None:
        """Send one item; once the service is gone, sending does nothing."""
        with self._lock:
            if self.broken:
                return
            try:
                self._conn.send(item)
            except (OSError, ValueError):
                self.broken = True


def _outcome(future: Future[CommandResult]) -> tuple[CommandResult | None, str | None, bool]:
    error = future.exception()
    if error is None:
        return future.result(), None, False
    return None, str(error), isinstance(error, CommandExpiredError)


def _submit(
    acquisitions: list[LiveAcquisition], item: tuple[Any, ...], out: _PipePublisher
) -> None:
    _, command_id, index, load, action, requested_by, tariff, deadline_s = item
    command = Command(load, action, requested_by, tariff, deadline_s)
    command.result.add_done_callback(lambda f: out.send(("result", command_id, *_outcome(f))))
    acquisitions[index].submit(command)


def _fixed_mmap_threshold() -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        pass  # not glibc: its allocator has its own policy


def _lock_counters(counters_path: Path, wait_s: float) -> TextIO | None:
    """Hold the counters' lock file for the life of this process; None if another holds it.

    After the service was killed its acquisition process lives on for a moment to save the
    counters; a service restarted at once must not load them before that last save, or its
    own later saves would look older and be refused. The kernel drops the lock at exit.
    """
    lock = counters_path.with_name(counters_path.name + ".lock").open("a")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock.close()
                return None
            time.sleep(0.05)


def child_main(fd: int) -> None:
    """The acquisition process: open the sources, measure, obey the service until told to stop."""
    _fixed_mmap_threshold()
    conn = Connection(fd)
    spec: AcquisitionSpec = conn.recv()
    logging.basicConfig(level=spec.log_level, format=LOG_FORMAT)
    # Ctrl-C reaches the whole process group: the service stops this process in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    lock = _lock_counters(spec.counters_path, spec.lock_wait_s)
    if lock is None:
        conn.send(("refused", f"another emsbox process is measuring into {spec.counters_path}"))
        return
    try:
        plans = build_sources(spec.meter, spec.data_dir, spec.utc_offset_h)
    except SourceError as exc:
        conn.send(("refused", str(exc)))
        return
    out = _PipePublisher(conn)
    interval = spec.meter.publish_interval_s
    acquisitions = [LiveAcquisition(p, out, spec.counters_path, interval) for p in plans]
    out.send(("ready", [a.loads for a in acquisitions]))
    for acquisition in acquisitions:
        acquisition.start()
    reported: list[str | None] = [None] * len(acquisitions)
    try:
        while not stop.is_set() and not out.broken:
            if conn.poll(POLL_S):
                item = conn.recv()
                if item[0] == "stop":
                    break
                if item[0] == "fast":
                    out.fast = bool(item[1])
                elif item[0] == "command":
                    _submit(acquisitions, item, out)
            for index, acquisition in enumerate(acquisitions):
                if acquisition.last_error != reported[index]:
                    reported[index] = acquisition.last_error
                    out.send(("failed", index, acquisition.last_error))
    except (EOFError, OSError):
        pass  # the service is gone: stop and save the counters
    finally:
        for acquisition in acquisitions:
            acquisition.stop()  # saves the counters
        lock.close()  # a new acquisition may load them now
        out.send(("stopped",))
