"""The device's objects with their properties (ASHRAE 135 clause 12): which each object type
has, which are required, and their values encoded from the latest readings."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from emsbox.bus import Reading
from emsbox.gateways.bacnet import encoding as enc
from emsbox.gateways.bacnet.identifiers import (
    OBJECT_TYPES_SUPPORTED_LENGTH,
    PROTOCOL_REVISION,
    SERVICES_EXECUTED_BITS,
    SERVICES_SUPPORTED_LENGTH,
    DeviceStatus,
    ErrorClass,
    ErrorCode,
    EventState,
    ObjectType,
    Reliability,
    Segmentation,
)
from emsbox.gateways.bacnet.identifiers import PropertyId as P
from emsbox.gateways.bacnet.objects import TARIFF_STATES, ObjectSpec
from emsbox.variables import BY_NAME, Kind

VENDOR_NAME = "emsbox"
# emsbox has no vendor identifier of ASHRAE's yet: 0 is what a device without one reports
# (see docs/bacnet.md); clients use it only to interpret proprietary extensions, of which
# this device has none.
VENDOR_IDENTIFIER = 0
MODEL_NAME = "emsbox energy meter"
APDU_TIMEOUT_MS = 3000
APDU_SEGMENT_TIMEOUT_MS = 2000
APDU_RETRIES = 3
PRIORITY_LEVELS = 16  # 19.2: the priority array's sixteen levels


class PropertyError(Exception):
    """A property cannot be read or written: the Error (class, code) to answer with."""

    def __init__(self, error_class: ErrorClass, error_code: ErrorCode) -> None:
        super().__init__(f"{error_class.name.lower()}: {error_code.name.lower()}")
        self.error_class = error_class
        self.error_code = error_code


@dataclass(frozen=True)
class DeviceIdentity:
    """What the device object says of itself."""

    instance: int
    name: str
    location: str
    description: str
    version: str


# Properties in the order ALL returns them; "required" per clause 12 for revision 14 (with
# covIncrement required as the objects support COV reporting, 13.1).
_COMMON_HEAD = (P.OBJECT_IDENTIFIER, P.OBJECT_NAME, P.OBJECT_TYPE, P.PRESENT_VALUE, P.DESCRIPTION)
_STATUS = (P.STATUS_FLAGS, P.EVENT_STATE, P.RELIABILITY, P.OUT_OF_SERVICE)
_ANALOG = (*_COMMON_HEAD, *_STATUS, P.UNITS, P.COV_INCREMENT, P.PROPERTY_LIST)
_BINARY_TEXTS = (P.INACTIVE_TEXT, P.ACTIVE_TEXT)
PROPERTIES: dict[ObjectType, tuple[P, ...]] = {
    ObjectType.ANALOG_INPUT: _ANALOG,
    ObjectType.ANALOG_VALUE: _ANALOG,
    ObjectType.MULTI_STATE_VALUE: (
        *_COMMON_HEAD,
        *_STATUS,
        P.NUMBER_OF_STATES,
        P.STATE_TEXT,
        P.PROPERTY_LIST,
    ),
    ObjectType.BINARY_VALUE: (*_COMMON_HEAD, *_STATUS, *_BINARY_TEXTS, P.PROPERTY_LIST),
    ObjectType.BINARY_INPUT: (
        *_COMMON_HEAD,
        *_STATUS,
        P.POLARITY,
        *_BINARY_TEXTS,
        P.PROPERTY_LIST,
    ),
    ObjectType.BINARY_OUTPUT: (
        *_COMMON_HEAD,
        *_STATUS,
        P.POLARITY,
        *_BINARY_TEXTS,
        P.PRIORITY_ARRAY,
        P.RELINQUISH_DEFAULT,
        P.PROPERTY_LIST,
    ),
    ObjectType.DEVICE: (
        P.OBJECT_IDENTIFIER,
        P.OBJECT_NAME,
        P.OBJECT_TYPE,
        P.SYSTEM_STATUS,
        P.VENDOR_NAME,
        P.VENDOR_IDENTIFIER,
        P.MODEL_NAME,
        P.FIRMWARE_REVISION,
        P.APPLICATION_SOFTWARE_VERSION,
        P.LOCATION,
        P.DESCRIPTION,
        P.PROTOCOL_VERSION,
        P.PROTOCOL_REVISION,
        P.PROTOCOL_SERVICES_SUPPORTED,
        P.PROTOCOL_OBJECT_TYPES_SUPPORTED,
        P.OBJECT_LIST,
        P.MAX_APDU_LENGTH_ACCEPTED,
        P.SEGMENTATION_SUPPORTED,
        P.MAX_SEGMENTS_ACCEPTED,
        P.APDU_SEGMENT_TIMEOUT,
        P.APDU_TIMEOUT,
        P.NUMBER_OF_APDU_RETRIES,
        P.DEVICE_ADDRESS_BINDING,
        P.DATABASE_REVISION,
        P.PROPERTY_LIST,
    ),
}
OPTIONAL_PROPERTIES: dict[ObjectType, frozenset[P]] = {
    ObjectType.ANALOG_INPUT: frozenset({P.DESCRIPTION, P.RELIABILITY}),
    ObjectType.ANALOG_VALUE: frozenset({P.DESCRIPTION, P.RELIABILITY}),
    ObjectType.MULTI_STATE_VALUE: frozenset({P.DESCRIPTION, P.RELIABILITY, P.STATE_TEXT}),
    ObjectType.BINARY_VALUE: frozenset({P.DESCRIPTION, P.RELIABILITY, *_BINARY_TEXTS}),
    ObjectType.BINARY_INPUT: frozenset({P.DESCRIPTION, P.RELIABILITY, *_BINARY_TEXTS}),
    ObjectType.BINARY_OUTPUT: frozenset({P.DESCRIPTION, P.RELIABILITY, *_BINARY_TEXTS}),
    ObjectType.DEVICE: frozenset({P.LOCATION, P.DESCRIPTION}),
}
# 12.x Property_List: every property but these four.
_NOT_LISTED = frozenset({P.OBJECT_IDENTIFIER, P.OBJECT_NAME, P.OBJECT_TYPE, P.PROPERTY_LIST})
ARRAYS = frozenset({P.OBJECT_LIST, P.PROPERTY_LIST, P.STATE_TEXT, P.PRIORITY_ARRAY})
SPECIAL = (P.ALL, P.REQUIRED, P.OPTIONAL)
_HAS = {kind: frozenset(props) for kind, props in PROPERTIES.items()}
_BY_NUMBER = {int(p): p for p in P}
_KINDS = {int(k): k for k in ObjectType}


def property_element(prop: int, value: bytes, index: int | None = None) -> bytes:
    """A ReadAccessResult's element (15.7.1.3.1): [2] the property, [3] the index if
    any, [4] its value."""
    head = enc.ctx_enumerated(2, prop)
    if index is not None:
        head += enc.ctx_unsigned(3, index)
    return head + b"\x4e" + value + b"\x4f"


def properties_of(object_type: ObjectType, which: P = P.ALL) -> tuple[P, ...]:
    """The properties an object type has: ALL, REQUIRED or OPTIONAL ones (15.7.3.1.1)."""
    every = PROPERTIES[object_type]
    if which == P.ALL:
        return every
    optional = OPTIONAL_PROPERTIES[object_type]
    if which == P.OPTIONAL:
        return tuple(p for p in every if p in optional)
    return tuple(p for p in every if p not in optional)


def object_types_supported() -> list[bool]:
    """Protocol_Object_Types_Supported: a bit per object type the device holds."""
    bits = [False] * OBJECT_TYPES_SUPPORTED_LENGTH
    for kind in PROPERTIES:
        bits[kind] = True
    return bits


def services_supported() -> list[bool]:
    """Protocol_Services_Supported: a bit per service the device executes."""
    bits = [False] * SERVICES_SUPPORTED_LENGTH
    for position in SERVICES_EXECUTED_BITS.values():
        bits[position] = True
    return bits


def status_flags(fault: bool) -> bytes:
    """Status_Flags {in-alarm, fault, overridden, out-of-service} (clause 12): nothing here is
    in alarm (no intrinsic reporting), overridden or out of service; FAULT is set whenever
    Reliability is not no-fault-detected."""
    return enc.app_bit_string((False, fault, False, False))


_NORMAL_FLAGS = status_flags(False)
_FAULT_FLAGS = status_flags(True)


@dataclass
class LiveState:
    """What changes while the device runs: readings, the loads' health, the digital I/O and
    the output's priority array."""

    readings: dict[str, Reading] = field(default_factory=dict)
    healthy: dict[str, bool] = field(default_factory=dict)  # per load; absent: unhealthy
    input_active: bool = False
    output_on: bool = False
    io_known: bool = False
    priority_array: list[bool | None] = field(default_factory=lambda: [None] * PRIORITY_LEVELS)


PresentValue = float | int | bool


class Database:
    """The objects of one configuration and the live values they serve."""

    def __init__(
        self,
        identity: DeviceIdentity,
        objects: Sequence[ObjectSpec],
        commandable: bool = False,
        state: LiveState | None = None,
    ) -> None:
        self.identity = identity
        self.objects = list(objects)
        self.commandable = commandable
        self.state = state or LiveState()
        self.device_key = (int(ObjectType.DEVICE), identity.instance)
        self.by_key: dict[tuple[int, int], ObjectSpec] = {o.key: o for o in self.objects}
        self.by_name: dict[str, tuple[int, int]] = {o.name: o.key for o in self.objects}
        self.by_name[identity.name] = self.device_key
        # Database_Revision (12.11.36) changes whenever the object table changes: a checksum
        # of it is stable across restarts and changes with the table.
        table = "\n".join(f"{o.key}:{o.name}" for o in self.objects)
        self.database_revision = zlib.crc32(f"{identity.name}\n{table}".encode())
        self._object_list = [enc.app_object_id(*self.device_key)] + [
            enc.app_object_id(*o.key) for o in self.objects
        ]
        self._static: dict[tuple[int, int], dict[P, bytes]] = {
            o.key: self._static_properties(o) for o in self.objects
        }
        self._static[self.device_key] = self._device_properties()
        # Whole RPM elements of what never changes, so that ALL mostly joins bytes.
        self._elements: dict[tuple[int, int], dict[P, bytes]] = {}
        for key, static in self._static.items():
            kind = ObjectType(key[0])
            elements = {p: property_element(p, value) for p, value in static.items()}
            for p in (P.OBJECT_LIST, P.PROPERTY_LIST, P.STATE_TEXT):
                if p in PROPERTIES[kind]:
                    elements[p] = property_element(p, b"".join(self._array(key, kind, p)))
            self._elements[key] = elements
        self._lists = {(k, w): properties_of(k, w) for k in PROPERTIES for w in SPECIAL}

    # -- static properties ----------------------------------------------------------------

    def _static_properties(self, spec: ObjectSpec) -> dict[P, bytes]:
        out = {
            P.OBJECT_IDENTIFIER: enc.app_object_id(*spec.key),
            P.OBJECT_NAME: enc.app_string(spec.name),
            P.OBJECT_TYPE: enc.app_enumerated(spec.type),
            P.DESCRIPTION: enc.app_string(spec.description),
            P.EVENT_STATE: enc.app_enumerated(EventState.NORMAL),
            P.OUT_OF_SERVICE: enc.app_boolean(False),
        }
        if spec.units is not None:
            out[P.UNITS] = enc.app_enumerated(spec.units)
        if spec.cov_increment is not None:
            out[P.COV_INCREMENT] = enc.app_real(spec.cov_increment)
        if spec.type == ObjectType.MULTI_STATE_VALUE:
            out[P.NUMBER_OF_STATES] = enc.app_unsigned(len(TARIFF_STATES))
        if spec.type in (ObjectType.BINARY_INPUT, ObjectType.BINARY_OUTPUT):
            out[P.POLARITY] = enc.app_enumerated(0)  # normal
        if spec.type == ObjectType.BINARY_VALUE:
            out[P.INACTIVE_TEXT] = enc.app_string("stopped")
            out[P.ACTIVE_TEXT] = enc.app_string("counting")
        elif spec.type == ObjectType.BINARY_INPUT:
            out[P.INACTIVE_TEXT] = enc.app_string("open")
            out[P.ACTIVE_TEXT] = enc.app_string("closed")
        elif spec.type == ObjectType.BINARY_OUTPUT:
            out[P.INACTIVE_TEXT] = enc.app_string("off")
            out[P.ACTIVE_TEXT] = enc.app_string("on")
            out[P.RELINQUISH_DEFAULT] = enc.app_enumerated(0)
        return out

    def _device_properties(self) -> dict[P, bytes]:
        i = self.identity
        return {
            P.OBJECT_IDENTIFIER: enc.app_object_id(*self.device_key),
            P.OBJECT_NAME: enc.app_string(i.name),
            P.OBJECT_TYPE: enc.app_enumerated(ObjectType.DEVICE),
            P.SYSTEM_STATUS: enc.app_enumerated(DeviceStatus.OPERATIONAL),
            P.VENDOR_NAME: enc.app_string(VENDOR_NAME),
            P.VENDOR_IDENTIFIER: enc.app_unsigned(VENDOR_IDENTIFIER),
            P.MODEL_NAME: enc.app_string(MODEL_NAME),
            P.FIRMWARE_REVISION: enc.app_string(i.version),
            P.APPLICATION_SOFTWARE_VERSION: enc.app_string(i.version),
            P.LOCATION: enc.app_string(i.location),
            P.DESCRIPTION: enc.app_string(i.description),
            P.PROTOCOL_VERSION: enc.app_unsigned(1),
            P.PROTOCOL_REVISION: enc.app_unsigned(PROTOCOL_REVISION),
            P.PROTOCOL_SERVICES_SUPPORTED: enc.app_bit_string(services_supported()),
            P.PROTOCOL_OBJECT_TYPES_SUPPORTED: enc.app_bit_string(object_types_supported()),
            P.MAX_APDU_LENGTH_ACCEPTED: enc.app_unsigned(1476),
            P.SEGMENTATION_SUPPORTED: enc.app_enumerated(Segmentation.SEGMENTED_TRANSMIT),
            # The device reassembles no segmented request (segmented-transmit): it accepts
            # requests of one segment.
            P.MAX_SEGMENTS_ACCEPTED: enc.app_unsigned(1),
            P.APDU_SEGMENT_TIMEOUT: enc.app_unsigned(APDU_SEGMENT_TIMEOUT_MS),
            P.APDU_TIMEOUT: enc.app_unsigned(APDU_TIMEOUT_MS),
            P.NUMBER_OF_APDU_RETRIES: enc.app_unsigned(APDU_RETRIES),
            P.DEVICE_ADDRESS_BINDING: b"",  # an empty list: the device binds to no device
            P.DATABASE_REVISION: enc.app_unsigned(self.database_revision),
        }

    # -- live values ----------------------------------------------------------------------

    def value(self, spec: ObjectSpec) -> tuple[PresentValue, Reliability]:
        """An object's present value and reliability now.

        A load whose source is unhealthy (or that has no reading yet) serves its last values
        with communication-failure; a value the load's wiring does not give (a phase it
        lacks) reads 0 with no-sensor.
        """
        state = self.state
        if spec.load is None:
            reliability = Reliability.NO_FAULT_DETECTED if state.io_known else Reliability.NO_SENSOR
            if spec.type == ObjectType.BINARY_INPUT:
                return state.input_active, reliability
            return state.output_on, reliability
        reading = state.readings.get(spec.load)
        healthy = state.healthy.get(spec.load, False) and reading is not None
        reliability = (
            Reliability.NO_FAULT_DETECTED if healthy else Reliability.COMMUNICATION_FAILURE
        )
        variable = BY_NAME[spec.variable or ""]
        if variable.kind is Kind.STATE:
            if variable.name == "tariff":
                return (reading.tariff if reading is not None else 1), reliability
            return (reading.partial_running if reading is not None else False), reliability
        if reading is None:
            return 0.0, reliability
        source = reading.counters if variable.kind is not Kind.INSTANTANEOUS else reading.values
        found = source.get(variable.name)
        if found is None or math.isnan(found):  # absent, or not measured
            if healthy:
                reliability = Reliability.NO_SENSOR
            return 0.0, reliability
        return float(found), reliability

    def present_value_bytes(self, spec: ObjectSpec, value: PresentValue) -> bytes:
        """The encoded presentValue of an object for ``value``."""
        if spec.type in (ObjectType.ANALOG_INPUT, ObjectType.ANALOG_VALUE):
            return enc.app_real(float(value))
        if spec.type == ObjectType.MULTI_STATE_VALUE:
            return enc.app_unsigned(int(value))
        return enc.app_enumerated(1 if value else 0)  # BACnetBinaryPV active / inactive

    # -- reading --------------------------------------------------------------------------

    def exists(self, key: tuple[int, int]) -> bool:
        """Whether the object ``key`` is in the device."""
        return key == self.device_key or key in self.by_key

    def object_type(self, key: tuple[int, int]) -> ObjectType:
        """The type of an object that exists."""
        return ObjectType(key[0])

    def read(self, key: tuple[int, int], prop: int, index: int | None = None) -> bytes:
        """The encoded value of a property (one element for an array ``index``; index 0 is
        the array's length, 15.5.1.1.3). Raises PropertyError."""
        if not self.exists(key):
            raise PropertyError(ErrorClass.OBJECT, ErrorCode.UNKNOWN_OBJECT)
        kind = _KINDS[key[0]]
        pid = _BY_NUMBER.get(prop)
        if pid is None or pid not in _HAS[kind]:
            raise PropertyError(ErrorClass.PROPERTY, ErrorCode.UNKNOWN_PROPERTY)
        if pid in ARRAYS:
            elements = self._array(key, kind, pid)
            if index is None:
                return b"".join(elements)
            if index == 0:
                return enc.app_unsigned(len(elements))
            if not 1 <= index <= len(elements):
                raise PropertyError(ErrorClass.PROPERTY, ErrorCode.INVALID_ARRAY_INDEX)
            return elements[index - 1]
        if index is not None:
            raise PropertyError(ErrorClass.PROPERTY, ErrorCode.PROPERTY_IS_NOT_AN_ARRAY)
        static = self._static[key].get(pid)
        if static is not None:
            return static
        spec = self.by_key[key]
        value, reliability = self.value(spec)
        if pid == P.PRESENT_VALUE:
            return self.present_value_bytes(spec, value)
        if pid == P.STATUS_FLAGS:
            return _NORMAL_FLAGS if reliability == Reliability.NO_FAULT_DETECTED else _FAULT_FLAGS
        if pid == P.RELIABILITY:
            return enc.app_enumerated(reliability)
        raise PropertyError(ErrorClass.PROPERTY, ErrorCode.UNKNOWN_PROPERTY)  # not reached

    def read_elements(self, key: tuple[int, int], which: P) -> bytes:
        """The RPM elements of every property ``which`` (ALL, REQUIRED or OPTIONAL) names
        of an object that exists."""
        kind = ObjectType(key[0])
        elements = self._elements[key]
        parts = []
        live: dict[P, bytes] | None = None
        for prop in self._lists[(kind, which)]:
            element = elements.get(prop)
            if element is None:
                if live is None:
                    live = self._live(key, kind)
                element = property_element(prop, live[prop])
            parts.append(element)
        return b"".join(parts)

    def _live(self, key: tuple[int, int], kind: ObjectType) -> dict[P, bytes]:
        """The values of the properties that change, computed once for all of them."""
        if key == self.device_key:
            return {}
        spec = self.by_key[key]
        value, reliability = self.value(spec)
        out = {
            P.PRESENT_VALUE: self.present_value_bytes(spec, value),
            P.STATUS_FLAGS: (
                _NORMAL_FLAGS if reliability == Reliability.NO_FAULT_DETECTED else _FAULT_FLAGS
            ),
            P.RELIABILITY: enc.app_enumerated(reliability),
        }
        if kind == ObjectType.BINARY_OUTPUT:
            out[P.PRIORITY_ARRAY] = b"".join(self._array(key, kind, P.PRIORITY_ARRAY))
        return out

    def _array(self, key: tuple[int, int], kind: ObjectType, pid: P) -> list[bytes]:
        if pid == P.OBJECT_LIST:
            return self._object_list
        if pid == P.PROPERTY_LIST:
            return [enc.app_enumerated(p) for p in PROPERTIES[kind] if p not in _NOT_LISTED]
        if pid == P.STATE_TEXT:
            return [enc.app_string(s) for s in TARIFF_STATES]
        return [
            enc.app_null() if slot is None else enc.app_enumerated(int(slot))
            for slot in self.state.priority_array
        ]

    def cov_values(self, spec: ObjectSpec) -> tuple[PresentValue, bool, bytes]:
        """What COV reporting watches (13.1): the present value, the fault flag, and the
        encoded listOfValues (presentValue and statusFlags as BACnetPropertyValues)."""
        value, reliability = self.value(spec)
        fault = reliability != Reliability.NO_FAULT_DETECTED
        values = (
            enc.ctx_enumerated(0, P.PRESENT_VALUE)
            + enc.opening(2)
            + self.present_value_bytes(spec, value)
            + enc.closing(2)
            + enc.ctx_enumerated(0, P.STATUS_FLAGS)
            + enc.opening(2)
            + (_FAULT_FLAGS if fault else _NORMAL_FLAGS)
            + enc.closing(2)
        )
        return value, fault, values
