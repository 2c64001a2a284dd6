"""The digital input and output on two lines of a GPIO chip, through the Linux GPIO character
device (``/dev/gpiochipN``) and libgpiod's Python binding.

This module is the only one that imports ``gpiod``, and only when a GPIO backend is opened:
the program runs, with the other backends, on a machine without the package or without GPIO.
The lines are requested for the program alone (the kernel refuses a line another program or a
driver holds), with the input's pull resistor and each line's active level set by the kernel,
so that "active" always means "contact closed" here.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from emsbox.control.config import GpioBias, IoConfig
from emsbox.control.io import IoError

if TYPE_CHECKING:
    import gpiod

log = logging.getLogger(__name__)

CONSUMER = "emsbox"  # the name the kernel shows as the lines' user (gpioinfo)
RETRY_S = 5.0  # after a failure at run time, how often the lines are requested again


def _reason(chip: str, exc: OSError) -> str:
    """One line for an error of the chip's device (the errno says which case it is)."""
    if exc.errno == errno.ENOENT and not os.path.exists(chip):
        return f"{chip}: no such GPIO chip"
    if exc.errno == errno.ENOENT:  # libgpiod looks the device up in /sys and found no chip
        return f"{chip}: not a GPIO chip"
    if exc.errno in (errno.ENODEV, errno.ENOTTY):
        return f"{chip}: not a GPIO chip"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{chip}: permission denied (the service's user needs access to the GPIO chip)"
    if exc.errno == errno.EBUSY:
        return f"{chip}: a line is in use by another program or driver"
    return f"{chip}: {exc.strerror or exc}"


def _request(config: IoConfig) -> gpiod.LineRequest:
    """The two lines, requested as the settings say; IoError with one line otherwise."""
    try:
        import gpiod
        from gpiod.line import Bias, Direction, Value
    except ImportError:
        raise IoError("GPIO needs the gpiod package (pip install 'emsbox[gpio]')") from None

    chip_path = config.gpio_chip
    bias = {
        GpioBias.PULL_UP: Bias.PULL_UP,
        GpioBias.PULL_DOWN: Bias.PULL_DOWN,
        GpioBias.AS_IS: Bias.AS_IS,
    }[config.gpio_input_bias]
    lines = {"input": config.gpio_input_line, "output": config.gpio_output_line}
    try:
        with gpiod.Chip(chip_path) as chip:
            count = chip.get_info().num_lines
            for role, offset in lines.items():
                if offset >= count:
                    raise IoError(
                        f"{chip_path} has lines 0 to {count - 1}: no {role} line {offset}"
                    )
                info = chip.get_line_info(offset)
                if info.used:
                    user = info.consumer or "another program or driver"
                    raise IoError(f"{chip_path} line {offset} ({role}) is in use by {user}")
            return chip.request_lines(
                consumer=CONSUMER,
                config={
                    config.gpio_input_line: gpiod.LineSettings(
                        direction=Direction.INPUT,
                        bias=bias,
                        active_low=config.gpio_input_active_low,
                    ),
                    # Requested open (inactive): the controller's first tick sets it.
                    config.gpio_output_line: gpiod.LineSettings(
                        direction=Direction.OUTPUT,
                        active_low=config.gpio_output_active_low,
                        output_value=Value.INACTIVE,
                    ),
                },
            )
    except OSError as exc:
        raise IoError(_reason(chip_path, exc)) from None
    except ValueError as exc:  # gpiod's word for a setting the chip does not take
        raise IoError(f"{chip_path}: {exc}") from None


class GpioIO:
    """The input and output on two GPIO lines; a failure at run time is reported by
    ``health`` and the lines are requested again every ``RETRY_S``."""

    def __init__(self, config: IoConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._lines: gpiod.LineRequest | None = _request(config)
        from gpiod.line import Value

        self._levels = (Value.INACTIVE, Value.ACTIVE)  # by contact: open, closed
        self._error: str | None = None
        self._retry_at = 0.0
        self._input = False
        self._output: bool | None = None  # as last set; None: to be set

    def read_input(self) -> bool:
        """Whether the input's contact is closed (the last known state after a failure)."""
        with self._lock:
            lines = self._usable()
            if lines is not None:
                try:
                    level = lines.get_value(self._config.gpio_input_line)
                    self._input = level is self._levels[True]
                except OSError as exc:
                    self._fail(exc)
            return self._input

    def write_output(self, closed: bool) -> None:
        """Close or open the output's contact (the line is set only when it changes)."""
        with self._lock:
            lines = self._usable()
            if lines is None or closed == self._output:
                return
            try:
                lines.set_value(self._config.gpio_output_line, self._levels[closed])
                self._output = closed
            except OSError as exc:
                self._fail(exc)

    def health(self) -> str | None:
        """None while the lines answer; otherwise why not."""
        with self._lock:
            return self._error

    def close(self) -> None:
        """Release the lines (the kernel keeps or resets the output as its driver does)."""
        with self._lock:
            if self._lines is not None:
                self._lines.release()
                self._lines = None

    def _usable(self) -> gpiod.LineRequest | None:
        """The lines, requested again once ``RETRY_S`` has passed since a failure."""
        if self._lines is None and self._error is not None and self._clock() >= self._retry_at:
            try:
                self._lines = _request(self._config)
                self._output = None  # set again: the line was requested open
                log.info("GPIO lines available again")
                self._error = None
            except IoError as exc:
                self._error = str(exc)
                self._retry_at = self._clock() + RETRY_S
        return self._lines

    def _fail(self, exc: OSError) -> None:
        reason = _reason(self._config.gpio_chip, exc)
        if reason != self._error:
            log.warning("GPIO: %s", reason)
        self._error = reason
        self._retry_at = self._clock() + RETRY_S
        if self._lines is not None:
            with contextlib.suppress(OSError):  # the device is gone: nothing to release
                self._lines.release()
            self._lines = None


def open_gpio(config: IoConfig) -> GpioIO:
    """The GPIO backend of ``config``; IoError with one line when it cannot be opened."""
    return GpioIO(config)
