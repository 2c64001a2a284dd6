"""The application services the device executes (ASHRAE 135 clauses 13, 15, 16): each
decodes its request's parameters and answers from the database. Pure: no sockets, no time.

A handler raises ``DecodeError`` for a malformed request (answered with a Reject, 18.8),
``PropertyError`` for an Error (18) and ``WpmError`` for WritePropertyMultiple's own error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from emsbox.gateways.bacnet import encoding as enc
from emsbox.gateways.bacnet.database import (
    PRIORITY_LEVELS,
    PROPERTIES,
    VENDOR_IDENTIFIER,
    Database,
    PropertyError,
    property_element,
)
from emsbox.gateways.bacnet.encoding import DecodeError, Reader
from emsbox.gateways.bacnet.identifiers import (
    MAX_INSTANCE,
    SPECIAL_PROPERTIES,
    WILDCARD_INSTANCE,
    EnableDisable,
    ErrorClass,
    ErrorCode,
    ObjectType,
    RejectReason,
    Segmentation,
)
from emsbox.gateways.bacnet.identifiers import PropertyId as P

Key = tuple[int, int]
MINIMUM_ON_OFF_PRIORITY = 6  # 19.2.3: priority 6 is reserved for minimum on/off times


def _resolve(db: Database, key: Key) -> Key:
    """The device wildcard instance 4194303 is this device (15.5.2, 15.7.2)."""
    if key[0] == ObjectType.DEVICE and key[1] == WILDCARD_INSTANCE:
        return db.device_key
    return key


def _property_reference(reader: Reader, pid_tag: int, index_tag: int) -> tuple[int, int | None]:
    pid = reader.context_unsigned(pid_tag, 0x3FFFFF)
    index = reader.context_unsigned(index_tag) if reader.has_context(index_tag) else None
    return pid, index


def _no_more(reader: Reader) -> None:
    if not reader.at_end():
        raise DecodeError(RejectReason.TOO_MANY_ARGUMENTS, "parameters after the last one")


# -- ReadProperty (15.5) ------------------------------------------------------------------


def read_property(db: Database, body: bytes) -> bytes:
    """The ReadProperty-ACK of a request."""
    reader = Reader(body)
    key = _resolve(db, reader.context_object_id(0))
    pid, index = _property_reference(reader, 1, 2)
    _no_more(reader)
    if pid in SPECIAL_PROPERTIES:
        # ALL, REQUIRED and OPTIONAL only mean something to ReadPropertyMultiple (15.7.3.1.2).
        if not db.exists(key):
            raise PropertyError(ErrorClass.OBJECT, ErrorCode.UNKNOWN_OBJECT)
        raise PropertyError(ErrorClass.PROPERTY, ErrorCode.READ_ACCESS_DENIED)
    value = db.read(key, pid, index)
    out = enc.ctx_object_id(0, *key) + enc.ctx_enumerated(1, pid)
    if index is not None:
        out += enc.ctx_unsigned(2, index)
    return out + enc.opening(3) + value + enc.closing(3)


# -- ReadPropertyMultiple (15.7) ----------------------------------------------------------


@dataclass(frozen=True)
class ReadAccessSpec:
    """One object of an RPM request and the properties asked of it."""

    key: Key
    references: tuple[tuple[int, int | None], ...]


def parse_read_property_multiple(body: bytes) -> list[ReadAccessSpec]:
    """Decode listOfReadAccessSpecs (15.7.1.1)."""
    reader = Reader(body)
    specs = []
    while not reader.at_end():
        key = reader.context_object_id(0)
        reader.expect_opening(1)
        references = []
        while not reader.has_closing(1):
            references.append(_property_reference(reader, 0, 1))
        reader.expect_closing(1)
        if not references:
            raise DecodeError(RejectReason.MISSING_REQUIRED_PARAMETER, "no property asked")
        specs.append(ReadAccessSpec(key, tuple(references)))
    if not specs:
        raise DecodeError(RejectReason.MISSING_REQUIRED_PARAMETER, "no object asked")
    return specs


def _error_element(pid: int, index: int | None, error: PropertyError) -> bytes:
    head = enc.ctx_enumerated(2, pid)
    if index is not None:
        head += enc.ctx_unsigned(3, index)
    return (
        head
        + b"\x5e"  # [5] propertyAccessError
        + enc.app_enumerated(error.error_class)
        + enc.app_enumerated(error.error_code)
        + b"\x5f"
    )


class AnswerTooLongError(Exception):
    """The answer being built grew beyond the octets the client (or the device) takes."""


def read_access_result(db: Database, spec: ReadAccessSpec, room: int | None = None) -> bytes:
    """One ReadAccessResult (15.7.1.3.1): a value or an error for every property asked,
    ALL / REQUIRED / OPTIONAL expanded to the object's properties (15.7.3.1.1). Raises
    AnswerTooLongError as soon as it exceeds ``room`` octets."""
    key = _resolve(db, spec.key)
    parts = [enc.ctx_object_id(0, *key), b"\x1e"]
    size = len(parts[0]) + 2
    for pid, index in spec.references:
        if pid in SPECIAL_PROPERTIES:
            if not db.exists(key):
                error = PropertyError(ErrorClass.OBJECT, ErrorCode.UNKNOWN_OBJECT)
                part = _error_element(pid, None, error)
            else:
                part = db.read_elements(key, P(pid))
        else:
            try:
                part = property_element(pid, db.read(key, pid, index), index)
            except PropertyError as error:
                part = _error_element(pid, index, error)
        size += len(part)
        if room is not None and size > room:
            raise AnswerTooLongError
        parts.append(part)
    parts.append(b"\x1f")
    return b"".join(parts)


def read_property_multiple(db: Database, body: bytes, limit: int | None = None) -> bytes:
    """The ReadPropertyMultiple-ACK of a request; raises AnswerTooLongError when it would exceed
    ``limit`` octets (checked while it is built)."""
    specs = parse_read_property_multiple(body)
    parts: list[bytes] = []
    size = 0
    for spec in specs:
        part = read_access_result(db, spec, None if limit is None else limit - size)
        size += len(part)
        parts.append(part)
    return b"".join(parts)


# -- WriteProperty (15.9) and WritePropertyMultiple (15.10) -------------------------------

# Switches the digital output to the priority array's value; raises when it is refused.
OutputSwitch = Callable[[bool], None]


def _binary_or_null(value: bytes) -> bool | None:
    """The BACnetBinaryPV or Null (relinquish) a client writes to a commandable object."""
    reader = Reader(value)
    try:
        tag = reader.read()
    except DecodeError:
        raise PropertyError(ErrorClass.PROPERTY, ErrorCode.INVALID_DATA_TYPE) from None
    if not reader.at_end() or tag.context:
        raise PropertyError(ErrorClass.PROPERTY, ErrorCode.INVALID_DATA_TYPE)
    if tag.number == enc.NULL and not tag.data:
        return None
    if tag.number != enc.ENUMERATED or not 1 <= len(tag.data) <= 4:
        raise PropertyError(ErrorClass.PROPERTY, ErrorCode.INVALID_DATA_TYPE)
    number = int.from_bytes(tag.data, "big")
    if number > 1:
        raise PropertyError(ErrorClass.PROPERTY, ErrorCode.VALUE_OUT_OF_RANGE)
    return number == 1


def write(
    db: Database,
    key: Key,
    pid: int,
    *,
    index: int | None,
    value: bytes,
    priority: int | None,
    switch: OutputSwitch | None,
) -> None:
    """Carry out one write: every property is read-only (write-access-denied), but the
    binary output's presentValue when the installer made it commandable (19.2)."""
    key = _resolve(db, key)
    if not db.exists(key):
        raise PropertyError(ErrorClass.OBJECT, ErrorCode.UNKNOWN_OBJECT)
    try:
        prop = P(pid)
    except ValueError:
        raise PropertyError(ErrorClass.PROPERTY, ErrorCode.UNKNOWN_PROPERTY) from None
    if prop not in PROPERTIES[db.object_type(key)]:
        raise PropertyError(ErrorClass.PROPERTY, ErrorCode.UNKNOWN_PROPERTY)
    commandable = (
        db.commandable
        and switch is not None
        and key[0] == ObjectType.BINARY_OUTPUT
        and prop == P.PRESENT_VALUE
    )
    if not commandable:
        raise PropertyError(ErrorClass.PROPERTY, ErrorCode.WRITE_ACCESS_DENIED)
    if index is not None:
        raise PropertyError(ErrorClass.PROPERTY, ErrorCode.PROPERTY_IS_NOT_AN_ARRAY)
    level = PRIORITY_LEVELS if priority is None else priority
    if level == MINIMUM_ON_OFF_PRIORITY:
        raise PropertyError(ErrorClass.PROPERTY, ErrorCode.WRITE_ACCESS_DENIED)
    command = _binary_or_null(value)
    array = db.state.priority_array
    before = list(array)
    array[level - 1] = command
    effective = next((slot for slot in array if slot is not None), False)  # 19.2.2
    try:
        assert switch is not None
        switch(effective)
    except Exception:  # the output's function is not remote: nothing was commanded
        array[:] = before
        raise PropertyError(ErrorClass.PROPERTY, ErrorCode.WRITE_ACCESS_DENIED) from None


def _priority(reader: Reader, tag: int) -> int | None:
    if not reader.has_context(tag):
        return None
    priority = reader.context_unsigned(tag)
    if not 1 <= priority <= PRIORITY_LEVELS:
        raise DecodeError(RejectReason.PARAMETER_OUT_OF_RANGE, "priority not 1..16")
    return priority


def write_property(db: Database, body: bytes, switch: OutputSwitch | None) -> None:
    """Execute a WriteProperty request (answered with a SimpleACK when it returns)."""
    reader = Reader(body)
    key = reader.context_object_id(0)
    pid, index = _property_reference(reader, 1, 2)
    value = reader.skip_value(3)
    priority = _priority(reader, 4)
    _no_more(reader)
    write(db, key, pid, index=index, value=value, priority=priority, switch=switch)


class WpmError(Exception):
    """WritePropertyMultiple-Error (15.10.1.3.2): the error and the first failed write."""

    def __init__(self, error: PropertyError, key: Key, pid: int, index: int | None) -> None:
        super().__init__(str(error))
        self.error, self.key, self.pid, self.index = error, key, pid, index

    def encode(self) -> bytes:
        """The error's parameters after the Error-PDU header."""
        reference = enc.ctx_object_id(0, *self.key) + enc.ctx_enumerated(1, self.pid)
        if self.index is not None:
            reference += enc.ctx_unsigned(2, self.index)
        return (
            enc.opening(0)
            + enc.app_enumerated(self.error.error_class)
            + enc.app_enumerated(self.error.error_code)
            + enc.closing(0)
            + enc.opening(1)
            + reference
            + enc.closing(1)
        )


def write_property_multiple(db: Database, body: bytes, switch: OutputSwitch | None) -> None:
    """Execute a WritePropertyMultiple request, writes in order until the first failure."""
    reader = Reader(body)
    writes = []
    while not reader.at_end():
        key = reader.context_object_id(0)
        reader.expect_opening(1)
        count = 0
        while not reader.has_closing(1):
            pid, index = _property_reference(reader, 0, 1)
            value = reader.skip_value(2)
            writes.append((key, pid, index, value, _priority(reader, 3)))
            count += 1
        reader.expect_closing(1)
        if not count:
            raise DecodeError(RejectReason.MISSING_REQUIRED_PARAMETER, "no property to write")
    if not writes:
        raise DecodeError(RejectReason.MISSING_REQUIRED_PARAMETER, "nothing to write")
    for key, pid, index, value, priority in writes:
        try:
            write(db, key, pid, index=index, value=value, priority=priority, switch=switch)
        except PropertyError as error:
            raise WpmError(error, _resolve(db, key), pid, index) from None


# -- Who-Is / I-Am (16.10), Who-Has / I-Have (16.9) ---------------------------------------


def _in_range(reader: Reader, instance: int, low_tag: int, high_tag: int) -> bool:
    """A device instance range: both limits or neither (16.9.1.1, 16.10.1.1)."""
    if reader.has_context(low_tag):
        low = reader.context_unsigned(low_tag, MAX_INSTANCE + 1)
        high = reader.context_unsigned(high_tag, MAX_INSTANCE + 1)
        return low <= instance <= high
    if reader.has_context(high_tag):
        raise DecodeError(RejectReason.MISSING_REQUIRED_PARAMETER, "high limit without low")
    return True


def who_is(db: Database, body: bytes) -> bool:
    """Whether a Who-Is asks for this device."""
    reader = Reader(body)
    wanted = _in_range(reader, db.identity.instance, 0, 1)
    _no_more(reader)
    return wanted


def i_am(db: Database, max_apdu: int = 1476) -> bytes:
    """The I-Am service request (16.10.2)."""
    return (
        enc.app_object_id(*db.device_key)
        + enc.app_unsigned(max_apdu)
        + enc.app_enumerated(Segmentation.SEGMENTED_TRANSMIT)
        + enc.app_unsigned(VENDOR_IDENTIFIER)
    )


def who_has(db: Database, body: bytes) -> bytes | None:
    """The I-Have a Who-Has asks for, or None when the object is not here."""
    reader = Reader(body)
    wanted = _in_range(reader, db.identity.instance, 0, 1)
    if reader.has_context(2):
        key = _resolve(db, reader.context_object_id(2))
        found = key if db.exists(key) else None
    elif reader.has_context(3):
        found = db.by_name.get(reader.context_string(3))
    else:
        raise DecodeError(RejectReason.MISSING_REQUIRED_PARAMETER, "no object asked")
    _no_more(reader)
    if not wanted or found is None:
        return None
    name = db.identity.name if found == db.device_key else db.by_key[found].name
    return enc.app_object_id(*db.device_key) + enc.app_object_id(*found) + enc.app_string(name)


# -- SubscribeCOV (13.14) -----------------------------------------------------------------


@dataclass(frozen=True)
class SubscribeCov:
    """A SubscribeCOV request: a cancellation when ``confirmed`` is None (13.14.1.1.3)."""

    process_id: int
    key: Key
    confirmed: bool | None
    lifetime_s: int  # 0: indefinite


def parse_subscribe_cov(db: Database, body: bytes) -> SubscribeCov:
    """Decode a SubscribeCOV request."""
    reader = Reader(body)
    process_id = reader.context_unsigned(0)
    key = _resolve(db, reader.context_object_id(1))
    confirmed = reader.context_boolean(2) if reader.has_context(2) else None
    lifetime = reader.context_unsigned(3) if reader.has_context(3) else None
    _no_more(reader)
    if confirmed is None and lifetime is not None:
        raise DecodeError(RejectReason.MISSING_REQUIRED_PARAMETER, "lifetime without mode")
    return SubscribeCov(process_id, key, confirmed, lifetime or 0)


def cov_notification(
    process_id: int, device: Key, key: Key, time_remaining_s: int, values: bytes
) -> bytes:
    """The parameters of a (Confirmed or Unconfirmed) COVNotification (13.6, 13.7)."""
    return (
        enc.ctx_unsigned(0, process_id)
        + enc.ctx_object_id(1, *device)
        + enc.ctx_object_id(2, *key)
        + enc.ctx_unsigned(3, time_remaining_s)
        + enc.opening(4)
        + values
        + enc.closing(4)
    )


# -- DeviceCommunicationControl (16.1), ReinitializeDevice (16.4) -------------------------


@dataclass(frozen=True)
class CommunicationControl:
    """A DeviceCommunicationControl request."""

    duration_min: int | None
    state: EnableDisable
    password: str | None


def parse_communication_control(body: bytes) -> CommunicationControl:
    """Decode a DeviceCommunicationControl request."""
    reader = Reader(body)
    duration = reader.context_unsigned(0, 0xFFFF) if reader.has_context(0) else None
    state = reader.context_unsigned(1)
    if state > EnableDisable.DISABLE_INITIATION:
        raise DecodeError(RejectReason.UNDEFINED_ENUMERATION, "enable-disable")
    password = reader.context_string(2) if reader.has_context(2) else None
    _no_more(reader)
    return CommunicationControl(duration, EnableDisable(state), password)


def parse_reinitialize(body: bytes) -> str | None:
    """Decode a ReinitializeDevice request: its password (the state is not acted on)."""
    reader = Reader(body)
    state = reader.context_unsigned(0)
    if state > 7:  # 16.4.1.1.1: coldstart (0) … activate-changes (7)
        raise DecodeError(RejectReason.UNDEFINED_ENUMERATION, "reinitialized state")
    password = reader.context_string(1) if reader.has_context(1) else None
    _no_more(reader)
    return password
