"""What both servers answer from: each unit's registers, and the commands a write may send."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Protocol

from emsbox.gateways.modbus.commands import commands_of
from emsbox.gateways.modbus.image import UnitImage
from emsbox.gateways.modbus.protocol import (
    ExceptionCode,
    ModbusError,
    ReadRegisters,
    WriteRequest,
    exception_pdu,
    is_write,
    parse_write,
    write_response,
)

log = logging.getLogger(__name__)

# TCP clients address "the device itself" as unit 0 or 255: the first load answers.
DEVICE_UNITS = (0, 255)

# Sends a command to a load: (load, action, tariff, who asks) -> its outcome.
Commander = Callable[[str, str, int | None, str], Future[object]]
COMMAND_WAIT_S = 5.0  # a command not done by then is answered with exception 04


class Output(Protocol):
    """The device's digital output, as the command register reads and switches it."""

    def output_on(self) -> bool:
        """Whether the output is on."""

    def set_output(self, on: bool, requested_by: str) -> None:
        """Switch it; an exception says why not (its function is not remote)."""


class Units:
    """The units' images, replaced whole (so a reader sees the old set or the new one), and
    the commands a write may send to their loads."""

    def __init__(self, commander: Commander | None, output: Output | None = None) -> None:
        self.images: Mapping[int, UnitImage] = {}
        self.names: Mapping[int, str] = {}
        self.commander = commander
        self.output = output
        self.writes = False
        # Called once the output was switched, so that the registers read it back at once.
        self.output_switched: Callable[[], None] = lambda: None

    def reader(self, unit_id: int) -> ReadRegisters | None:
        """The registers of a TCP request's unit (0 and 255: the first)."""
        return self.unit(1 if unit_id in DEVICE_UNITS else unit_id)

    def unit(self, unit_id: int) -> ReadRegisters | None:
        """The registers of unit ``unit_id`` (1: the first load), or None."""
        image = self.images.get(unit_id)
        return None if image is None else image.read

    def takes_write(self, pdu: bytes) -> bool:
        """Whether ``pdu`` is a write to be carried out (rather than refused with 01)."""
        return self.writes and self.commander is not None and is_write(pdu)

    def submit(
        self, unit_id: int, pdu: bytes, peer: str
    ) -> tuple[WriteRequest, list[Future[object]]]:
        """Send the commands of a write to the unit's load (ModbusError when it has none)."""
        request = parse_write(pdu)
        actions = commands_of(request)
        load = self.names.get(unit_id)
        if load is None or self.commander is None:
            raise ModbusError(ExceptionCode.GATEWAY_TARGET_FAILED)
        futures = []
        for action, tariff in actions:
            if action == "output":
                futures.append(self._switch_output(tariff == 1, peer))
                continue
            what = action if tariff is None else f"tariff {tariff}"
            log.info("modbus: %s asks for %s on load %s", peer, what, load)
            futures.append(self.commander(load, action, tariff, f"modbus {peer}"))
        return request, futures

    def _switch_output(self, on: bool, peer: str) -> Future[object]:
        """Switch the output now; the future holds why not, if it was refused."""
        done: Future[object] = Future()
        log.info("modbus: %s asks for the digital output %s", peer, "on" if on else "off")
        try:
            if self.output is None:
                raise RuntimeError("this device has no digital output to switch")
            self.output.set_output(on, f"modbus {peer}")
        except Exception as exc:  # any refusal is the client's exception 04
            done.set_exception(exc)
            return done
        done.set_result(None)
        self.output_switched()
        return done

    def outcome(self, request: WriteRequest, errors: list[BaseException | None]) -> bytes:
        """The answer to a write whose commands ended with ``errors`` (None: done)."""
        failed = [e for e in errors if e is not None]
        for error in failed:
            log.warning("modbus: a command was not applied: %s", error)
        if failed:
            return exception_pdu(request.function, ExceptionCode.SERVER_DEVICE_FAILURE)
        return write_response(request)
