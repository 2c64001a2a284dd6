"""The numbers of ASHRAE 135 the gateway speaks: object types, properties, services, errors,
units and the other enumerations (clause 21, "FORMAL DESCRIPTION OF APPLICATION PROTOCOL
DATA UNITS")."""

from __future__ import annotations

from enum import IntEnum


class ObjectType(IntEnum):
    """BACnetObjectType (clause 21): the object types the device holds."""

    ANALOG_INPUT = 0
    ANALOG_VALUE = 2
    BINARY_INPUT = 3
    BINARY_OUTPUT = 4
    BINARY_VALUE = 5
    DEVICE = 8
    MULTI_STATE_VALUE = 19


# The words BACnet tools print for object types (as in clause 21, hyphenated).
OBJECT_TYPE_NAMES: dict[ObjectType, str] = {
    ObjectType.ANALOG_INPUT: "analog-input",
    ObjectType.ANALOG_VALUE: "analog-value",
    ObjectType.BINARY_INPUT: "binary-input",
    ObjectType.BINARY_OUTPUT: "binary-output",
    ObjectType.BINARY_VALUE: "binary-value",
    ObjectType.DEVICE: "device",
    ObjectType.MULTI_STATE_VALUE: "multi-state-value",
}


class PropertyId(IntEnum):
    """BACnetPropertyIdentifier (clause 21): the properties the objects have, and the three
    special identifiers ReadPropertyMultiple takes."""

    ACTIVE_TEXT = 4
    ALL = 8
    APDU_SEGMENT_TIMEOUT = 10
    APDU_TIMEOUT = 11
    APPLICATION_SOFTWARE_VERSION = 12
    COV_INCREMENT = 22
    DESCRIPTION = 28
    DEVICE_ADDRESS_BINDING = 30
    EVENT_STATE = 36
    FIRMWARE_REVISION = 44
    INACTIVE_TEXT = 46
    LOCATION = 58
    MAX_APDU_LENGTH_ACCEPTED = 62
    MODEL_NAME = 70
    NUMBER_OF_APDU_RETRIES = 73
    NUMBER_OF_STATES = 74
    OBJECT_IDENTIFIER = 75
    OBJECT_LIST = 76
    OBJECT_NAME = 77
    OBJECT_TYPE = 79
    OPTIONAL = 80
    OUT_OF_SERVICE = 81
    POLARITY = 84
    PRESENT_VALUE = 85
    PRIORITY_ARRAY = 87
    PROTOCOL_OBJECT_TYPES_SUPPORTED = 96
    PROTOCOL_SERVICES_SUPPORTED = 97
    PROTOCOL_VERSION = 98
    RELIABILITY = 103
    RELINQUISH_DEFAULT = 104
    REQUIRED = 105
    SEGMENTATION_SUPPORTED = 107
    STATE_TEXT = 110
    STATUS_FLAGS = 111
    SYSTEM_STATUS = 112
    UNITS = 117
    VENDOR_IDENTIFIER = 120
    VENDOR_NAME = 121
    PROTOCOL_REVISION = 139
    DATABASE_REVISION = 155
    MAX_SEGMENTS_ACCEPTED = 167
    PROPERTY_LIST = 371
    SERIAL_NUMBER = 372


SPECIAL_PROPERTIES = (PropertyId.ALL, PropertyId.REQUIRED, PropertyId.OPTIONAL)


class ConfirmedService(IntEnum):
    """BACnetConfirmedServiceChoice (clause 21): the ones the device executes or sends."""

    CONFIRMED_COV_NOTIFICATION = 1
    SUBSCRIBE_COV = 5
    READ_PROPERTY = 12
    READ_PROPERTY_MULTIPLE = 14
    WRITE_PROPERTY = 15
    WRITE_PROPERTY_MULTIPLE = 16
    DEVICE_COMMUNICATION_CONTROL = 17
    REINITIALIZE_DEVICE = 20


class UnconfirmedService(IntEnum):
    """BACnetUnconfirmedServiceChoice (clause 21)."""

    I_AM = 0
    I_HAVE = 1
    UNCONFIRMED_COV_NOTIFICATION = 2
    WHO_HAS = 7
    WHO_IS = 8


# BACnetServicesSupported bit positions (clause 21) of the services the device executes:
# protocolServicesSupported says exactly these (clause 12.11, Protocol_Services_Supported:
# the services this device's implementation supports as a responder); the ones it only
# sends (I-Am, I-Have, COV notifications) are not executed, so they stay clear.
SERVICES_EXECUTED_BITS: dict[str, int] = {
    "subscribeCOV": 5,
    "readProperty": 12,
    "readPropertyMultiple": 14,
    "writeProperty": 15,
    "writePropertyMultiple": 16,
    "deviceCommunicationControl": 17,
    "reinitializeDevice": 20,
    "who-Has": 33,
    "who-Is": 34,
}
# Protocol revision 14 (ASHRAE 135-2012) defines services up to writeGroup (bit 40) and
# object types up to lighting-output (54): the bit strings are that long.
SERVICES_SUPPORTED_LENGTH = 41
OBJECT_TYPES_SUPPORTED_LENGTH = 55
PROTOCOL_REVISION = 14


class ErrorClass(IntEnum):
    """BACnetErrorClass (clause 18)."""

    DEVICE = 0
    OBJECT = 1
    PROPERTY = 2
    RESOURCES = 3
    SECURITY = 4
    SERVICES = 5


class ErrorCode(IntEnum):
    """BACnetErrorCode (clause 18): the codes the device answers with."""

    OTHER = 0
    INCONSISTENT_PARAMETERS = 7
    INVALID_DATA_TYPE = 9
    MISSING_REQUIRED_PARAMETER = 16
    NO_SPACE_TO_ADD_LIST_ELEMENT = 19
    PASSWORD_FAILURE = 26
    READ_ACCESS_DENIED = 27
    SERVICE_REQUEST_DENIED = 29
    UNKNOWN_OBJECT = 31
    UNKNOWN_PROPERTY = 32
    VALUE_OUT_OF_RANGE = 37
    WRITE_ACCESS_DENIED = 40
    INVALID_ARRAY_INDEX = 42
    COV_SUBSCRIPTION_FAILED = 43
    OPTIONAL_FUNCTIONALITY_NOT_SUPPORTED = 45
    PROPERTY_IS_NOT_AN_ARRAY = 50


class RejectReason(IntEnum):
    """BACnetRejectReason (clause 18.8)."""

    OTHER = 0
    BUFFER_OVERFLOW = 1
    INCONSISTENT_PARAMETERS = 2
    INVALID_PARAMETER_DATA_TYPE = 3
    INVALID_TAG = 4
    MISSING_REQUIRED_PARAMETER = 5
    PARAMETER_OUT_OF_RANGE = 6
    TOO_MANY_ARGUMENTS = 7
    UNDEFINED_ENUMERATION = 8
    UNRECOGNIZED_SERVICE = 9


class AbortReason(IntEnum):
    """BACnetAbortReason (clause 18.9)."""

    OTHER = 0
    BUFFER_OVERFLOW = 1
    INVALID_APDU_IN_THIS_STATE = 2
    SEGMENTATION_NOT_SUPPORTED = 4
    WINDOW_SIZE_OUT_OF_RANGE = 7
    OUT_OF_RESOURCES = 9
    TSM_TIMEOUT = 10
    APDU_TOO_LONG = 11


class EngineeringUnits(IntEnum):
    """BACnetEngineeringUnits (clause 21) of the vocabulary's units."""

    AMPERES = 3
    VOLTS = 5
    VOLT_AMPERES = 8
    VOLT_AMPERES_REACTIVE = 11
    POWER_FACTOR = 15
    KILOWATT_HOURS = 19
    HERTZ = 27
    WATTS = 47
    HOURS = 71
    NO_UNITS = 95
    PERCENT = 98
    KILOVOLT_AMPERE_HOURS = 240
    KILOVOLT_AMPERE_HOURS_REACTIVE = 243


class Reliability(IntEnum):
    """BACnetReliability (clause 21)."""

    NO_FAULT_DETECTED = 0
    NO_SENSOR = 1
    COMMUNICATION_FAILURE = 12


class EventState(IntEnum):
    """BACnetEventState (clause 21)."""

    NORMAL = 0
    FAULT = 1


class Segmentation(IntEnum):
    """BACnetSegmentation (clause 21)."""

    SEGMENTED_BOTH = 0
    SEGMENTED_TRANSMIT = 1
    SEGMENTED_RECEIVE = 2
    NO_SEGMENTATION = 3


class DeviceStatus(IntEnum):
    """BACnetDeviceStatus (clause 21)."""

    OPERATIONAL = 0


class EnableDisable(IntEnum):
    """DeviceCommunicationControl-Request enable-disable (clause 16.1)."""

    ENABLE = 0
    DISABLE = 1
    DISABLE_INITIATION = 2


# Instance 4194303 addresses "this device" in ReadProperty(Multiple) (15.5.2, 15.7.2) and
# is the largest 22-bit instance, never a real one (clause 12.11.1).
WILDCARD_INSTANCE = 0x3FFFFF
MAX_INSTANCE = WILDCARD_INSTANCE - 1
