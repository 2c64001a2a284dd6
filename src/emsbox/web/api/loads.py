"""Loads: list, latest values, history, energy per period, partial counter commands."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, Field

from emsbox.bus import Reading
from emsbox.service.acquisition import CommandError, CommandExpiredError
from emsbox.variables import BY_NAME
from emsbox.web.api.deps import Installer, ServiceDep, Viewer
from emsbox.web.api.timeparams import iso, time_range

router = APIRouter(prefix="/loads", tags=["loads"])
COMMAND_TIMEOUT_S = 5.0
# How long past its deadline the answer to a command may take to come back.
COMMAND_GRACE_S = 1.0


class LoadOut(BaseModel):
    """A configured load."""

    name: str = Field(description="Name of the load, used in every path.")
    wiring: str = Field(description="Wiring system: 1P2W, 2P3W, 3P3W, 3P4W or 3P4W-WL.")
    source: str = Field(description="Where the samples come from: simulator or recording.")
    healthy: bool = Field(description="Whether readings are arriving.")


class NowOut(BaseModel):
    """The latest reading of a load: one consistent set of values."""

    load: str
    timestamp: str = Field(description="End of the measurement cycle, ISO 8601 UTC.")
    timestamp_s: float = Field(description="The same, in seconds since the Unix epoch.")
    duration_s: float = Field(description="Measured time the values cover.")
    values: dict[str, float | int | bool] = Field(
        description="Every variable under its VARIABLES.md name (absent: not for this wiring)."
    )


class SeriesOut(BaseModel):
    """One variable's downsampled history: parallel arrays, one entry per bucket."""

    t: list[float] = Field(description="Bucket start, seconds since the Unix epoch.")
    avg: list[float | None]
    min: list[float | None]
    max: list[float | None]


class HistoryOut(BaseModel):
    """Variables of a load over a time range, downsampled to at most ``points`` buckets."""

    load: str
    start: str
    end: str
    points: int
    tier_resolution_s: int = Field(description="Resolution of the stored tier read.")
    series: dict[str, SeriesOut]


class EnergyPeriodOut(BaseModel):
    """Energy of one calendar period, from counter differences."""

    start: str
    end: str
    complete: bool = Field(description="False for a period still running.")
    values: dict[str, float] = Field(description="kWh, kvarh, kVAh per counter name.")


class EnergyOut(BaseModel):
    """Energy per day, week, month or year in the site's time zone."""

    load: str
    period: str
    timezone: str
    periods: list[EnergyPeriodOut]


class PartialIn(BaseModel):
    """A partial counter command."""

    action: Literal["start", "stop", "reset"] = Field(
        description="start or stop counting, or reset the partial counters to zero."
    )


def _check_load(service: ServiceDep, load: str) -> None:
    if load not in service.load_names():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no load named {load!r}")


@router.get("", response_model=list[LoadOut], summary="List the loads")
async def list_loads(service: ServiceDep, _: Viewer) -> list[LoadOut]:
    """Every configured load with its wiring, source and health."""
    return [LoadOut(**vars(d)) for d in service.describe_loads()]


# The JSON of each load's latest reading, made once per reading rather than once per request:
# /now is the most frequently polled route.
_now_cache: dict[str, tuple[Reading, bytes]] = {}


@router.get("/{load}/now", response_model=NowOut, summary="Latest values of a load")
async def now(load: str, service: ServiceDep, _: Viewer) -> Response:
    """All variables of the latest reading, timestamped."""
    _check_load(service, load)
    reading = service.bus.latest(load)
    if reading is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"no reading of {load!r} yet")
    cached = _now_cache.get(load)
    if cached is None or cached[0] is not reading:
        body = NowOut(
            load=load,
            timestamp=iso(reading.timestamp_s),
            timestamp_s=reading.timestamp_s,
            duration_s=reading.duration_s,
            values=reading.as_dict(),
        ).model_dump_json()
        cached = (reading, body.encode())
        _now_cache[load] = cached
    return Response(cached[1], media_type="application/json")


@router.get("/{load}/history", response_model=HistoryOut, summary="History of variables")
async def history(
    load: str,
    *,
    service: ServiceDep,
    _: Viewer,
    vars: Annotated[str, Query(description="Comma-separated variable names, e.g. p_sys,v_l1.")],
    start: Annotated[
        str | None, Query(description="ISO 8601 or epoch seconds; default: an hour ago.")
    ] = None,
    end: Annotated[
        str | None, Query(description="ISO 8601 or epoch seconds; default: now.")
    ] = None,
    points: Annotated[int, Query(ge=1, le=10_000, description="Most buckets returned.")] = 500,
) -> HistoryOut:
    """Any variables over any range, downsampled to ``points`` buckets from the best tier."""
    _check_load(service, load)
    start_s, end_s = time_range(start, end, 3600.0, service.config.site.zone())
    names = [n.strip() for n in vars.split(",") if n.strip()]
    if not names:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "vars: name at least one variable")
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"vars: unknown variable {unknown[0]!r}")
    if load not in await asyncio.to_thread(service.store.loads):
        # A configured load that has logged nothing yet has an empty history.
        return HistoryOut(
            load=load,
            start=iso(start_s),
            end=iso(end_s),
            points=points,
            tier_resolution_s=service.config.store.tiers[0].resolution_s,
            series={},
        )
    try:
        result = await asyncio.to_thread(service.store.history, load, names, start_s, end_s, points)
    except (ValueError, OverflowError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    series = {
        name: SeriesOut(
            t=[float(x) for x in s.t],
            avg=[_finite(x) for x in s.avg],
            min=[_finite(x) for x in s.min],
            max=[_finite(x) for x in s.max],
        )
        for name, s in result.series.items()
    }
    return HistoryOut(
        load=load,
        start=iso(start_s),
        end=iso(end_s),
        points=points,
        tier_resolution_s=result.tier_resolution_s,
        series=series,
    )


def _finite(x: float) -> float | None:
    value = float(x)
    return value if math.isfinite(value) else None


@router.get("/{load}/energy", response_model=EnergyOut, summary="Energy per period")
async def energy(
    load: str,
    service: ServiceDep,
    _: Viewer,
    period: Annotated[
        Literal["day", "week", "month", "year"], Query(description="Calendar period.")
    ] = "day",
    start: Annotated[
        str | None, Query(description="ISO 8601 or epoch seconds; default: 31 days ago.")
    ] = None,
    end: Annotated[
        str | None, Query(description="ISO 8601 or epoch seconds; default: now.")
    ] = None,
) -> EnergyOut:
    """Energy per calendar period in the site's time zone, from counter differences."""
    _check_load(service, load)
    zone = service.config.site.zone()
    start_s, end_s = time_range(start, end, 31 * 86400.0, zone)
    if load not in await asyncio.to_thread(service.store.loads):
        return EnergyOut(
            load=load, period=period, timezone=service.config.site.timezone, periods=[]
        )
    try:
        periods = await asyncio.to_thread(service.store.energy, load, period, start_s, end_s, zone)
    except (ValueError, OverflowError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    return EnergyOut(
        load=load,
        period=period,
        timezone=service.config.site.timezone,
        periods=[
            EnergyPeriodOut(
                start=iso(p.start_s), end=iso(p.end_s), complete=p.complete, values=dict(p.values)
            )
            for p in periods
        ],
    )


@router.post("/{load}/partial", response_model=NowOut, summary="Start, stop or reset partials")
async def partial(load: str, body: PartialIn, service: ServiceDep, who: Installer) -> NowOut:
    """Start, stop or reset the load's partial counters; returns its counters afterwards."""
    _check_load(service, load)
    future = service.command(load, body.action, who.label, timeout_s=COMMAND_TIMEOUT_S)
    try:
        # The acquisition refuses the command once its deadline has passed, so after the
        # deadline and a grace period it is certain the command was not applied.
        counters = await asyncio.wait_for(
            asyncio.wrap_future(future), COMMAND_TIMEOUT_S + COMMAND_GRACE_S
        )
    except (CommandExpiredError, TimeoutError):
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the load's acquisition did not answer in time; the command was not applied",
        ) from None
    except CommandError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    t = time.time()
    return NowOut(load=load, timestamp=iso(t), timestamp_s=t, duration_s=0.0, values=counters)
