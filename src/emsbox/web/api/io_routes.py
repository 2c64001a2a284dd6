"""The digital input and output: their state, the output switched remotely, the simulated
input switched."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from emsbox.app import Service
from emsbox.control.controller import ControlError
from emsbox.web.api.deps import Installer, ServiceDep, Viewer

router = APIRouter(prefix="/io", tags=["io"])


class IoOut(BaseModel):
    """The digital input and output now."""

    backend: str = Field(
        description="Where they are: simulated, gpio (GPIO lines) or modbus (a remote I/O module)."
    )
    backend_ok: bool = Field(description="Whether the backend works (its hardware answers).")
    backend_error: str | None = Field(
        description="Why the backend does not work, in one line; null while it works."
    )
    input_function: str = Field(description="status, tariff, partial_run or partial_reset.")
    input_closed: bool = Field(description="Whether the input's contact is closed.")
    input_active: bool = Field(description="The debounced state (inverted if so configured).")
    output_function: str = Field(description="off, pulse or remote.")
    output_on: bool = Field(description="Whether the output is on (a pulse, or switched on).")
    output_closed: bool = Field(description="Whether its contact is closed (NC inverts).")
    pulses: int | None = Field(description="Pulses given since the count began (pulse output).")
    pulses_waiting: int | None = Field(
        description="Pulses owed but not yet given: the power is above max_pulse_power_kw."
    )
    max_pulse_power_kw: float | None = Field(
        description="The highest power whose pulses keep pace at this constant and width."
    )


class OutputIn(BaseModel):
    """Switch the output."""

    model_config = ConfigDict(extra="forbid", strict=True)
    on: bool


class InputIn(BaseModel):
    """Close or open the simulated input's contact."""

    model_config = ConfigDict(extra="forbid", strict=True)
    closed: bool


def _state(service: Service) -> IoOut:
    return IoOut.model_validate(service.io_state(), from_attributes=True)


@router.get("", response_model=IoOut, summary="The digital input and output")
async def io_state(service: ServiceDep, _: Viewer) -> IoOut:
    """Their functions and states, and the pulse output's count."""
    return _state(service)


@router.put(
    "/output",
    response_model=IoOut,
    summary="Switch the digital output",
    responses={409: {"description": "The output's function is not remote."}},
)
async def switch_output(body: OutputIn, service: ServiceDep, who: Installer) -> IoOut:
    """Switch the output on or off, when its function is remote (logged with who asked)."""
    try:
        service.set_output(body.on, who.label)
    except ControlError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    await asyncio.sleep(0.05)  # the controller's next tick sets the contact
    return _state(service)


@router.put(
    "/input",
    response_model=IoOut,
    summary="Switch the simulated digital input",
    responses={409: {"description": "The input is real hardware."}},
)
async def switch_input(body: InputIn, service: ServiceDep, who: Installer) -> IoOut:
    """Close or open the simulated input's contact, as a switch wired to it would. The answer
    shows the contact; ``input_active`` follows once it has held for the debounce time."""
    try:
        service.set_simulated_input(body.closed, who.label)
    except ControlError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    await asyncio.sleep(0.05)  # the controller's next tick reads the contact
    return _state(service)
