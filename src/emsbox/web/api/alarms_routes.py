"""Alarms: their state, their history, and acknowledging them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from emsbox.control.controller import ControlError
from emsbox.web.api.deps import ServiceDep, Viewer

router = APIRouter(prefix="/alarms", tags=["alarms"])


class AlarmOut(BaseModel):
    """One configured alarm now."""

    name: str
    load: str
    variable: str
    condition: str = Field(description="above, below or outside; system for a built-in one.")
    low: float | None
    high: float | None
    active: bool = Field(description="Raised now (for a latching alarm: until acknowledged).")
    acknowledged: bool = Field(description="Whether a user has acknowledged it since raised.")
    latching: bool
    value: float | None = Field(description="The variable's latest value (null: none).")
    since_s: float | None = Field(description="When it was raised (Unix seconds), if raised.")
    system: bool = Field(description="A built-in alarm for the system itself.")
    detail: str = Field(description="A built-in alarm's: what is, or last was, wrong.")


class AlarmEventOut(BaseModel):
    """One change of an alarm's state."""

    id: int
    time_s: float
    alarm: str
    event: str = Field(description="raised, cleared or acknowledged.")
    value: float | None
    by: str | None = Field(description="Who acknowledged it.")


class AckOut(BaseModel):
    """The alarm after the acknowledgement."""

    acknowledged: bool = Field(description="False if there was nothing to acknowledge.")
    alarm: AlarmOut


@router.get("", response_model=list[AlarmOut], summary="Every alarm now")
async def alarms(service: ServiceDep, _: Viewer) -> list[AlarmOut]:
    """Each configured alarm: its rule, whether it is raised and acknowledged, the value."""
    return [AlarmOut.model_validate(a, from_attributes=True) for a in service.alarms()]


@router.get("/history", response_model=list[AlarmEventOut], summary="Alarm events")
async def history(
    service: ServiceDep,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    alarm: Annotated[str | None, Query(max_length=60)] = None,
) -> list[AlarmEventOut]:
    """The newest events first: raised, cleared, acknowledged (by whom)."""
    return [
        AlarmEventOut.model_validate(e, from_attributes=True)
        for e in service.alarm_history(limit, alarm)
    ]


@router.post(
    "/{name}/ack",
    response_model=AckOut,
    summary="Acknowledge an alarm",
    responses={404: {"description": "No alarm of that name."}},
)
async def acknowledge(name: str, service: ServiceDep, who: Viewer) -> AckOut:
    """Acknowledge alarm ``name`` (recorded with the user); a latched alarm whose value is
    back to normal clears."""
    try:
        done = service.acknowledge_alarm(name, who.label)
    except ControlError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    (alarm,) = [a for a in service.alarms() if a.name == name]
    return AckOut(acknowledged=done, alarm=AlarmOut.model_validate(alarm, from_attributes=True))
