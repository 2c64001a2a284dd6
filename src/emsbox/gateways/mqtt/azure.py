"""Azure IoT Hub's MQTT conventions: the user name and the SAS token of a device.

From Microsoft's "Communicate with an IoT hub using the MQTT protocol" and "Control access to
IoT Hub with shared access signatures": the client id is the device id; the user name is
``<hub host>/<device id>/?api-version=<version>``; with SAS sign-in the password is
``SharedAccessSignature sr=<url-encoded resource>&sig=<url-encoded signature>&se=<expiry>``,
where the signature is the base64 HMAC-SHA256, keyed by the base64-decoded device key, of
``<url-encoded resource>\\n<expiry>`` and the resource is ``<hub host>/devices/<device id>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

API_VERSION = "2021-04-12"


def username(hub_host: str, device_id: str) -> str:
    """The MQTT user name IoT Hub expects of a device."""
    return f"{hub_host}/{device_id}/?api-version={API_VERSION}"


def sas_token(hub_host: str, device_id: str, key_base64: str, expiry_s: int) -> str:
    """A device SAS token valid until ``expiry_s`` (Unix seconds)."""
    resource = quote(f"{hub_host}/devices/{device_id}", safe="")
    to_sign = f"{resource}\n{expiry_s}".encode()
    digest = hmac.new(base64.b64decode(key_base64), to_sign, hashlib.sha256).digest()
    signature = quote(base64.b64encode(digest).decode("ascii"), safe="")
    return f"SharedAccessSignature sr={resource}&sig={signature}&se={expiry_s}"
