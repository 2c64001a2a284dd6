"""Meters read over Modbus by the same register maps the gateway serves: a SunSpec meter
(found by scanning from 40000) or a Carlo Gavazzi EM24 Ethernet / EM340. Another meter model
is another table (a CSV file under maps/) and a few lines here."""

from __future__ import annotations

from enum import StrEnum

from emsbox.gateways.modbus import image
from emsbox.gateways.modbus.client import ModbusClientError, RtuClient, TcpClient, read_span
from emsbox.gateways.modbus.register_map import Point, decode

SUNSPEC_BASES = (40000, 0, 50000)  # where SunSpec devices put their map, in scan order
MAX_MODELS = 32  # models looked through for the meter model before giving up
_INT_MODELS = (201, 202, 203, 204)
_FLOAT_MODELS = (211, 212, 213, 214)


class MeterModel(StrEnum):
    """Register maps emsbox can read a meter by."""

    SUNSPEC = "sunspec"
    CARLO_GAVAZZI = "carlo_gavazzi"


Client = TcpClient | RtuClient


class SunSpecMeter:
    """A SunSpec meter (models 201–204 or 211–214); the model is found at the first poll."""

    def __init__(self, client: Client, unit: int, retries: int = 1) -> None:
        self.client, self.unit, self.retries = client, unit, retries
        self._found: tuple[int, int, tuple[Point, ...]] | None = None  # address, size, table

    def poll(self) -> dict[str, float]:
        """The meter's values in the vocabulary's names and units."""
        if self._found is None:
            self._found = self._find()
        address, size, table = self._found
        try:
            data = read_span(self.client, self.unit, address, size, self.retries)
        except ModbusClientError:
            self._found = None  # the meter may have been replaced: scan again next time
            raise
        return decode(table, data)

    def _find(self) -> tuple[int, int, tuple[Point, ...]]:
        for base in SUNSPEC_BASES:
            try:
                marker = read_span(self.client, self.unit, base, 2, self.retries)
            except ModbusClientError as exc:
                if exc.code is None:
                    raise  # no answer at all: scanning further will not help
                continue
            if marker == image.SUNS:
                return self._walk(base + 2)
        raise ModbusClientError(f"unit {self.unit}: no SunSpec map at {SUNSPEC_BASES}")

    def _walk(self, at: int) -> tuple[int, int, tuple[Point, ...]]:
        for _ in range(MAX_MODELS):
            head = read_span(self.client, self.unit, at, 2, self.retries)
            model, length = int.from_bytes(head[:2], "big"), int.from_bytes(head[2:], "big")
            if model == 0xFFFF:
                break
            if model in _INT_MODELS:
                return at, 2 + length, image.METER_INT
            if model in _FLOAT_MODELS:
                return at, 2 + length, image.METER_FLOAT
            at += 2 + length
        raise ModbusClientError(f"unit {self.unit}: no SunSpec meter model (201–204, 211–214)")


class CarloGavazziMeter:
    """A Carlo Gavazzi EM24 Ethernet, EM340 or compatible meter."""

    _START, _TABLE = image.CARLO_GAVAZZI[0]

    def __init__(self, client: Client, unit: int, retries: int = 1) -> None:
        self.client, self.unit, self.retries = client, unit, retries

    def poll(self) -> dict[str, float]:
        """The meter's values in the vocabulary's names and units."""
        size = max(p.address + p.size for p in self._TABLE)
        data = read_span(self.client, self.unit, self._START, size, self.retries)
        return decode(self._TABLE, data)


def meter(
    model: MeterModel, client: Client, unit: int, retries: int = 1
) -> SunSpecMeter | CarloGavazziMeter:
    """A meter of ``model`` at ``unit`` through ``client``."""
    if model is MeterModel.SUNSPEC:
        return SunSpecMeter(client, unit, retries)
    return CarloGavazziMeter(client, unit, retries)
