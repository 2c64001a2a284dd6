"""E-mail notifications: a test message, to check the settings before an alarm needs them."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from emsbox.gateways.email.sender import EmailDisabledError, EmailError
from emsbox.web.api.deps import Installer, ServiceDep

log = logging.getLogger(__name__)

router = APIRouter(prefix="/email", tags=["email"])


class EmailTestOut(BaseModel):
    """The test message was accepted by the server."""

    sent: bool = Field(description="Always true: a failure is an error answer.")
    to: list[str] = Field(description="The recipients it was sent to.")


@router.post(
    "/test",
    response_model=EmailTestOut,
    summary="Send a test e-mail",
    responses={
        409: {"description": "E-mail notifications are off in the running settings."},
        502: {"description": "The server could not be reached or refused; the reason."},
    },
)
async def send_test(service: ServiceDep, who: Installer) -> EmailTestOut:
    """Send a test message now with the *running* settings (save changed settings first) to
    every recipient. The answer waits for the server; its refusal or the failure to reach it
    is answered 502 with a one-line reason (connection refused, TLS, sign-in, recipient)."""
    try:
        to = await asyncio.to_thread(service.email.send_test)
    except EmailDisabledError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except EmailError as exc:
        log.warning("email: test by %s failed: %s", who.label, exc)
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from None
    log.info("email: test message sent by %s to %s", who.label, ", ".join(to))
    return EmailTestOut(sent=True, to=to)
