"""The topic layout: where each kind of message goes, for each profile.

Generic brokers and AWS IoT Core::

    <prefix>/<device>/status               "online" / "offline" (retained; last will)
    <prefix>/<device>/<load>/state         live state, one JSON object
    <prefix>/<device>/<load>/<variable>    one variable as a plain number (optional)
    <prefix>/<device>/<load>/record        logged interval records, JSON with "seq" (QoS 1)
    <prefix>/<device>/alarm                alarm events (raised, cleared, acknowledged)
    <prefix>/<device>/command              commands in (when enabled)
    <prefix>/<device>/command/result       the answer to each command

Azure IoT Hub has one device-to-cloud topic, ``devices/<device>/messages/events/``; the kind
of message and the load travel as message properties in its property bag
(``…/events/type=state&load=main``), which IoT Hub routing queries can filter on. Commands
arrive as cloud-to-device messages on ``devices/<device>/messages/devicebound/#``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from emsbox.gateways.mqtt.config import MqttConfig, MqttProfile

STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"
# Home Assistant announces itself here when it starts: discovery is then published again.
HA_STATUS = "status"


@dataclass(frozen=True)
class Topics:
    """Every topic of one device under one configuration."""

    profile: MqttProfile
    base: str  # <prefix>/<device>, or devices/<device>/messages/events/ for Azure
    device_id: str

    @classmethod
    def of(cls, config: MqttConfig, device_id: str) -> Topics:
        """The topics of ``device_id`` as ``config`` lays them out."""
        if config.profile is MqttProfile.AZURE:
            return cls(config.profile, f"devices/{device_id}/messages/events/", device_id)
        return cls(config.profile, f"{config.topic_prefix}/{device_id}", device_id)

    @property
    def azure(self) -> bool:
        """Whether every message goes to Azure IoT Hub's one events topic."""
        return self.profile is MqttProfile.AZURE

    def _event(self, **properties: str) -> str:
        """Azure's events topic with a property bag (URL-encoded, as IoT Hub parses it)."""
        bag = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in properties.items())
        return self.base + bag

    def status(self) -> str:
        """Availability: "online" when connected, "offline" as the last will."""
        return self._event(type="status") if self.azure else f"{self.base}/status"

    def state(self, load: str) -> str:
        """A load's live state."""
        return self._event(type="state", load=load) if self.azure else f"{self.base}/{load}/state"

    def variable(self, load: str, name: str) -> str:
        """One variable of a load as a plain number (not with Azure)."""
        return f"{self.base}/{load}/{name}"

    def record(self, load: str) -> str:
        """A load's logged interval records."""
        if self.azure:
            return self._event(type="record", load=load)
        return f"{self.base}/{load}/record"

    def alarm(self) -> str:
        """Alarm events: raised, cleared, acknowledged."""
        return self._event(type="alarm") if self.azure else f"{self.base}/alarm"

    def command(self) -> str:
        """The subscription for incoming commands."""
        if self.azure:
            return f"devices/{self.device_id}/messages/devicebound/#"
        return f"{self.base}/command"

    def command_result(self) -> str:
        """Where the answer to each command goes."""
        return self._event(type="command_result") if self.azure else f"{self.base}/command/result"
