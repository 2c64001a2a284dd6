"""DeviceCommunicationControl (clause 16.1) and the password that guards it and
ReinitializeDevice (16.4)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from emsbox.gateways.bacnet.database import PropertyError
from emsbox.gateways.bacnet.identifiers import EnableDisable, ErrorClass, ErrorCode
from emsbox.gateways.bacnet.services import CommunicationControl

log = logging.getLogger(__name__)


def check_password(expected: str, password: str | None) -> None:
    """16.1.3.1, 16.4.3.1: a wrong or missing password is password-failure; with no
    password configured (``expected`` empty) the services are refused altogether."""
    if not expected:
        raise PropertyError(ErrorClass.SERVICES, ErrorCode.SERVICE_REQUEST_DENIED)
    if password != expected:
        raise PropertyError(ErrorClass.SECURITY, ErrorCode.PASSWORD_FAILURE)


@dataclass
class Control:
    """DeviceCommunicationControl's state (16.1): enabled unless disabled until a time."""

    state: EnableDisable = EnableDisable.ENABLE
    until: float | None = None  # monotonic; None with a disabled state: until enabled

    def current(self, now: float) -> EnableDisable:
        """The state at ``now`` (monotonic), enabled again once a disabling has run out."""
        if self.state != EnableDisable.ENABLE and self.until is not None and now >= self.until:
            self.state, self.until = EnableDisable.ENABLE, None
        return self.state

    def apply(self, request: CommunicationControl, password: str) -> None:
        """Enable or disable as a DeviceCommunicationControl asks, when its password is
        ``password`` (else raises PropertyError, leaving the state as it was)."""
        check_password(password, request.password)
        self.state = request.state
        self.until = (
            None
            if request.state == EnableDisable.ENABLE or request.duration_min is None
            else time.monotonic() + 60.0 * request.duration_min
        )
        log.warning(
            "bacnet: communication %s by DeviceCommunicationControl%s",
            request.state.name.lower().replace("_", "-"),
            "" if request.duration_min is None else f" for {request.duration_min} min",
        )
