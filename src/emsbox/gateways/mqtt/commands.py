"""Commands received over MQTT: their JSON form, validation and the answer.

A command is one JSON object, e.g. ``{"action": "reset_partial", "load": "main", "id": "42"}``,
``{"action": "set_tariff", "load": "main", "tariff": 2}`` or ``{"action": "set_output", "on":
true}`` (the digital output, when its function is remote). ``id`` is optional and comes back
in the answer, published on the command result topic as ``{"id", "ok", "action", "load",
"error" or "result"}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MAX_BYTES = 4096
MAX_ID_LENGTH = 100
# action → what the service calls it
ACTIONS = {
    "start_partial": "start",
    "stop_partial": "stop",
    "reset_partial": "reset",
    "set_tariff": "tariff",
    "set_output": "output",
}


class CommandError(ValueError):
    """A command refused before it is tried; the message says why."""


@dataclass(frozen=True)
class MqttCommand:
    """A valid command."""

    id: str | None
    action: str
    load: str  # empty for set_output
    tariff: int | None
    on: bool | None = None

    @property
    def verb(self) -> str:
        """The service's name of the action."""
        return ACTIONS[self.action]


def _object(payload: bytes) -> dict[str, object]:
    if len(payload) > MAX_BYTES:
        raise CommandError(f"command longer than {MAX_BYTES} bytes")
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CommandError("not a JSON object") from None
    if not isinstance(body, dict):
        raise CommandError("not a JSON object")
    return body


def request_id(payload: bytes) -> str | None:
    """The ``id`` of a command, if it has a usable one (for answering refused commands)."""
    try:
        found = _object(payload).get("id")
    except CommandError:
        return None
    return found if isinstance(found, str) and len(found) <= MAX_ID_LENGTH else None


def parse_command(payload: bytes, loads: Sequence[str]) -> MqttCommand:
    """The command in ``payload``; CommandError naming what is wrong."""
    body = _object(payload)
    unknown = set(body) - {"action", "load", "tariff", "id", "on"}
    if unknown:
        raise CommandError(f"unknown members: {', '.join(sorted(unknown))}")
    request = body.get("id")
    if request is not None and (not isinstance(request, str) or len(request) > MAX_ID_LENGTH):
        raise CommandError(f"id must be a string of at most {MAX_ID_LENGTH} characters")
    action = body.get("action")
    if not isinstance(action, str) or action not in ACTIONS:
        raise CommandError(f"action must be one of {', '.join(ACTIONS)}")
    if action == "set_output":
        on = body.get("on")
        if not isinstance(on, bool):
            raise CommandError("on must be true or false")
        if set(body) - {"action", "on", "id"}:
            raise CommandError("set_output takes only on (and id)")
        return MqttCommand(request, action, "", None, on)
    if "on" in body:
        raise CommandError(f"{action} takes no on")
    load = body.get("load")
    if not isinstance(load, str) or load not in loads:
        raise CommandError(f"load must be one of {', '.join(loads)}")
    tariff = body.get("tariff")
    if action == "set_tariff":
        if type(tariff) is not int or tariff not in (1, 2):
            raise CommandError("tariff must be 1 or 2")
    elif tariff is not None:
        raise CommandError(f"{action} takes no tariff")
    return MqttCommand(request, action, load, tariff if isinstance(tariff, int) else None)


def result_json(
    request: str | None,
    ok: bool,
    error: str | None,
    command: MqttCommand | None = None,
    result: Mapping[str, object] | None = None,
) -> str:
    """The answer to a command."""
    body: dict[str, object] = {"id": request, "ok": ok}
    if command is not None:
        body["action"] = command.action
        if command.load:
            body["load"] = command.load
    if error is not None:
        body["error"] = error
    if result is not None:
        body["result"] = dict(result)
    return json.dumps(body, separators=(",", ":"))
