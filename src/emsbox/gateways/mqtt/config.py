"""Settings of the MQTT gateway."""

from __future__ import annotations

import base64
import binascii
import re
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

# Characters a device id, topic prefix or discovery prefix may hold: they become topic levels
# and Home Assistant ids, where "+", "#", "/" and spaces would break the layout.
TOPIC_PART = re.compile(r"^[A-Za-z0-9_.-]+$")
TOPIC_PREFIX = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


class MqttProfile(StrEnum):
    """Which kind of broker: any MQTT broker, or one of the clouds with its own rules."""

    GENERIC = "generic"
    AZURE = "azure_iot_hub"
    AWS = "aws_iot_core"


class MqttProtocol(StrEnum):
    """The MQTT protocol version."""

    V311 = "3.1.1"
    V5 = "5"


class AzureAuth(StrEnum):
    """How the device proves who it is to Azure IoT Hub."""

    SAS = "sas"
    X509 = "x509"


class MqttConfig(BaseModel):
    """The MQTT gateway: live state, logged records (store-and-forward), Home Assistant
    discovery and commands, to any broker or to Azure IoT Hub / AWS IoT Core."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(default=False, description="Publish over MQTT (off by default).")
    profile: MqttProfile = Field(
        default=MqttProfile.GENERIC,
        description=(
            "generic: any MQTT broker (Mosquitto, Home Assistant, EMQX, HiveMQ…); "
            "azure_iot_hub: Azure IoT Hub's device topics and sign-in; aws_iot_core: AWS IoT "
            "Core with the device certificate."
        ),
    )
    host: str = Field(
        default="",
        max_length=253,
        description=(
            "Host name or address of the broker (Azure: <hub>.azure-devices.net; AWS: the "
            "account's …-ats.iot.<region>.amazonaws.com endpoint)."
        ),
    )
    port: int = Field(
        default=8883, ge=1, le=65535, description="Broker port: 8883 with TLS, 1883 without."
    )
    protocol: MqttProtocol = Field(
        default=MqttProtocol.V311,
        description="MQTT version: 3.1.1 (every broker) or 5. Azure IoT Hub needs 3.1.1.",
    )
    tls: bool = Field(default=True, description="Connect over TLS (1.2 or later).")
    ca_file: str = Field(
        default="",
        max_length=500,
        description=(
            "PEM file of the certificate authority that signed the broker's certificate "
            "(relative paths are in the data directory); empty: the system's trusted "
            "authorities."
        ),
    )
    client_cert_file: str = Field(
        default="",
        max_length=500,
        description=(
            "PEM file of this device's client certificate, for brokers that require one "
            "(mutual TLS; AWS IoT, Azure X.509)."
        ),
    )
    client_key_file: str = Field(
        default="",
        max_length=500,
        description="PEM file of the client certificate's private key (kept readable by emsbox "
        "only).",
    )
    tls_check_hostname: bool = Field(
        default=True,
        description=(
            "Check that the broker's certificate names the host connected to. Turn off only "
            "for a broker reached by an address its certificate does not list."
        ),
    )
    username: str = Field(default="", max_length=500, description="User name; empty: none.")
    password: SecretStr = Field(default=SecretStr(""), description="Password; empty: none.")
    client_id: str = Field(
        default="",
        max_length=128,
        description="MQTT client id; empty: the device id (as Azure and AWS require).",
    )
    device_id: str = Field(
        default="",
        max_length=128,
        description=(
            "This device's name in topics and in Home Assistant; for Azure the IoT Hub "
            "device id, for AWS the thing name. Empty: emsbox-<serial number>."
        ),
    )
    keepalive_s: int = Field(
        default=60,
        ge=5,
        le=1800,
        description="Keep-alive: the broker drops the connection (and sends the last will) "
        "after 1.5 times this without a word.",
    )
    qos: int = Field(
        default=0,
        ge=0,
        le=1,
        description=(
            "QoS of live state messages: 0 (at most once) or 1 (at least once). Logged "
            "records always use 1."
        ),
    )
    topic_prefix: str = Field(
        default="emsbox",
        min_length=1,
        max_length=100,
        description="First levels of every topic: <prefix>/<device id>/… (not used by Azure).",
    )
    state_interval_s: float = Field(
        default=5.0,
        ge=1.0,
        le=3600.0,
        description="How often each load's live state is published, in seconds.",
    )
    retain_state: bool = Field(
        default=True,
        description="Publish live state retained, so a new subscriber gets the last values at "
        "once (Azure ignores it).",
    )
    per_variable_topics: bool = Field(
        default=False,
        description=(
            "Also publish each variable on its own topic <prefix>/<device>/<load>/<variable> "
            "as a plain number (not with Azure)."
        ),
    )
    publish_records: bool = Field(
        default=True,
        description=(
            "Publish every logged interval record (the store's logging interval) through the "
            "on-disk outbox: kept until the broker acknowledges it, through outages and "
            "restarts."
        ),
    )
    outbox_max_records: int = Field(
        default=50_000,
        ge=100,
        le=10_000_000,
        description=(
            "Most records the outbox keeps during an outage (about 4 kB each for a "
            "three-phase load: 50 000 take about 200 MB); when it is full the oldest are "
            "dropped and an alarm is raised."
        ),
    )
    discovery: bool = Field(
        default=False,
        description=(
            "Announce every load and variable to Home Assistant (MQTT discovery); turning it "
            "off removes them again."
        ),
    )
    discovery_prefix: str = Field(
        default="homeassistant",
        min_length=1,
        max_length=100,
        description="Home Assistant's discovery prefix.",
    )
    commands_enabled: bool = Field(
        default=False,
        description=(
            "Accept commands on <prefix>/<device>/command (Azure: cloud-to-device messages): "
            "start, stop and reset partial counters, select the tariff, switch the digital "
            "output (when its function is remote). Each is logged. Off: nothing is subscribed."
        ),
    )
    azure_auth: AzureAuth = Field(
        default=AzureAuth.SAS,
        description="Azure IoT Hub sign-in: sas (the device's symmetric key) or x509 (the "
        "client certificate).",
    )
    azure_device_key: SecretStr = Field(
        default=SecretStr(""),
        description="Azure IoT Hub: the device's primary key (base64), for SAS sign-in.",
    )
    azure_token_ttl_s: int = Field(
        default=3600,
        ge=300,
        le=31_536_000,
        description="Azure IoT Hub: how long each SAS token is valid; a new one is made at "
        "each connection.",
    )
    reconnect_max_s: float = Field(
        default=60.0,
        ge=1.0,
        le=3600.0,
        description="Longest wait between attempts to reconnect (waits double from 1 s, "
        "randomised).",
    )

    @field_validator("device_id", "client_id")
    @classmethod
    def _topic_safe(cls, value: str) -> str:
        """Ids become topic levels: letters, digits, '_', '-' and '.' only."""
        if value and not TOPIC_PART.match(value):
            raise ValueError("use letters, digits, '_', '-' and '.' only")
        return value

    @field_validator("topic_prefix", "discovery_prefix")
    @classmethod
    def _prefix_safe(cls, value: str) -> str:
        """Topic levels of letters, digits, '_', '-' and '.', separated by '/'."""
        if not TOPIC_PREFIX.match(value):
            raise ValueError(
                "use topic levels of letters, digits, '_', '-' and '.' separated by '/'"
            )
        return value

    @field_validator("azure_device_key")
    @classmethod
    def _base64_key(cls, value: SecretStr) -> SecretStr:
        """The key is base64, as the Azure portal shows it."""
        key = value.get_secret_value()
        if key:
            try:
                base64.b64decode(key, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("not a base64 key (copy the device's primary key)") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """What each profile needs, checked only when the gateway is enabled."""
        if not self.enabled:
            return self
        problems = []
        if not self.host.strip():
            problems.append("host: the broker's host is needed")
        if bool(self.client_cert_file) != bool(self.client_key_file):
            problems.append("client_cert_file, client_key_file: give both or neither")
        if self.profile is MqttProfile.AZURE:
            problems += self._azure_problems()
        elif self.profile is MqttProfile.AWS:
            if not self.tls:
                problems.append("tls: AWS IoT Core needs TLS")
            if not self.client_cert_file:
                problems.append("client_cert_file: AWS IoT Core needs the device certificate")
            if not self.device_id:
                problems.append("device_id: the thing name is needed for AWS IoT Core")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _azure_problems(self) -> list[str]:
        problems = []
        if not self.tls:
            problems.append("tls: Azure IoT Hub needs TLS")
        if not self.device_id:
            problems.append("device_id: the IoT Hub device id is needed")
        if self.protocol is not MqttProtocol.V311:
            problems.append("protocol: Azure IoT Hub's device endpoint speaks MQTT 3.1.1")
        if self.discovery:
            problems.append("discovery: Home Assistant discovery needs a generic broker")
        if self.per_variable_topics:
            problems.append("per_variable_topics: Azure IoT Hub has one device-to-cloud topic")
        if self.azure_auth is AzureAuth.SAS and not self.azure_device_key.get_secret_value():
            problems.append("azure_device_key: the device key is needed for SAS sign-in")
        if self.azure_auth is AzureAuth.X509 and not self.client_cert_file:
            problems.append("client_cert_file: X.509 sign-in needs the device certificate")
        return problems
