"""The command registers: what a Modbus write may do, when writes are enabled.

Three holding registers per unit, from ``COMMAND_BASE``: the partial counters (write 1 to
start, 2 to stop, 3 to reset; reads 1 while they count, else 0), the tariff (write 1 or 2; reads
the active one) and the device's digital output (write 1 to switch it on, 0 off, when its
function is remote; reads 1 while it is on). Any other address is refused with exception 02,
any other value with 03.
"""

from __future__ import annotations

from emsbox.gateways.modbus.protocol import ExceptionCode, ModbusError, WriteRequest

COMMAND_BASE = 39000
PARTIAL = COMMAND_BASE
TARIFF = COMMAND_BASE + 1
OUTPUT = COMMAND_BASE + 2
_PARTIAL_ACTIONS = {1: "start", 2: "stop", 3: "reset"}


def commands_of(request: WriteRequest) -> list[tuple[str, int | None]]:
    """The actions a write asks for, in order: (``start``/``stop``/``reset``, None),
    (``tariff``, 1 or 2) or (``output``, 0 or 1). ModbusError when any register or value is not
    a command."""
    out: list[tuple[str, int | None]] = []
    for offset, value in enumerate(request.values):
        address = request.address + offset
        if address == PARTIAL:
            if value not in _PARTIAL_ACTIONS:
                raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE)
            out.append((_PARTIAL_ACTIONS[value], None))
        elif address == TARIFF:
            if value not in (1, 2):
                raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE)
            out.append(("tariff", value))
        elif address == OUTPUT:
            if value not in (0, 1):
                raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE)
            out.append(("output", value))
        else:
            raise ModbusError(ExceptionCode.ILLEGAL_DATA_ADDRESS)
    return out
