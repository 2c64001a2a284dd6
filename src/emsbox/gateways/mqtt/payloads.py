"""What the messages hold: live state and logged records as flat JSON objects.

Flat objects with VARIABLES.md names as keys are what AWS IoT rules (``SELECT p_sys FROM …``),
Azure IoT Hub routing queries and Home Assistant templates (``value_json.p_sys``) read most
easily; no key is named like a built-in method of a dict (shared PITFALLS.md).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

from emsbox.bus import Reading


def iso_time(t: float) -> str:
    """A Unix time as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def state_values(reading: Reading) -> dict[str, float | int | bool]:
    """Every finite value of the reading under its variable name, with the state variables."""
    return {
        name: value
        for name, value in reading.as_dict().items()
        if isinstance(value, bool) or math.isfinite(value)
    }


def state_json(reading: Reading, device_id: str) -> str:
    """A load's live state: ``ts`` (end of the reading, Unix seconds), ``time``, ``device``,
    ``load`` and every variable."""
    body: dict[str, object] = {
        "device": device_id,
        "load": reading.load,
        "ts": round(reading.timestamp_s, 3),
        "time": iso_time(reading.timestamp_s),
        **state_values(reading),
    }
    return json.dumps(body, separators=(",", ":"), allow_nan=False)


def variable_text(value: float | int | bool) -> str:
    """One variable as a plain payload: a number, or true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(float(value)) if isinstance(value, float) else str(value)


def record_payload(seq: int, device_id: str, record: str) -> str:
    """A logged record from the outbox (a JSON object) with its sequence number and device.

    The stored object is spliced rather than parsed and encoded again: the outbox drains
    thousands of records a second.
    """
    if not record.startswith("{") or len(record) < 2:
        raise ValueError(f"outbox record {seq} is not a JSON object")
    head = json.dumps({"seq": seq, "device": device_id}, separators=(",", ":"))
    rest = record[1:]
    return head[:-1] + ("," + rest if rest != "}" else "}")
