"""Service status: health (no authentication), system details, Prometheus metrics."""

from __future__ import annotations

import asyncio
import socket
import time

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from emsbox.variables import BY_NAME, Kind
from emsbox.web import netinfo
from emsbox.web.api.deps import ServiceDep, Viewer

router = APIRouter(tags=["system"])


class HealthOut(BaseModel):
    """Whether the service works; for load balancers and monitoring (no authentication)."""

    status: str = Field(description="ok, or degraded when a part is unhealthy.")
    version: str


class PartOut(BaseModel):
    """One running part."""

    name: str
    healthy: bool
    detail: str


class GatewayOut(BaseModel):
    """A protocol server (Modbus TCP, ...): enabled or not, working or not."""

    name: str
    enabled: bool
    healthy: bool
    detail: str = Field(description="Where it listens and how busy it is, or why it fails.")


class AddressOut(BaseModel):
    """One network address of the device."""

    interface: str
    address: str


class SystemOut(BaseModel):
    """Version, uptime, network, storage use and the health of every part."""

    version: str
    site: str
    hostname: str
    time_s: float = Field(description="The device's clock, seconds since the Unix epoch.")
    addresses: list[AddressOut] = Field(description="Network addresses, loopback left out.")
    uptime_s: float
    data_dir: str
    data_dir_used_bytes: int
    data_dir_free_bytes: int
    restart_required: bool
    parts: list[PartOut]
    gateways: list[GatewayOut]


@router.get("/health", response_model=HealthOut, summary="Health (no authentication)")
async def health(service: ServiceDep) -> HealthOut:
    """ok when every part is healthy, degraded otherwise."""
    parts = await asyncio.to_thread(service.health)
    ok = all(part.healthy for part in parts)
    return HealthOut(status="ok" if ok else "degraded", version=service.version)


@router.get("/system", response_model=SystemOut, summary="System details")
async def system(service: ServiceDep, _: Viewer) -> SystemOut:
    """Version, uptime, addresses, data directory use and health of every running part."""
    usage = await asyncio.to_thread(service.data_dir_usage)
    parts = await asyncio.to_thread(service.health)
    addresses = await asyncio.to_thread(netinfo.addresses)
    now = time.time()
    return SystemOut(
        version=service.version,
        site=service.config.site.name,
        hostname=socket.gethostname(),
        time_s=now,
        addresses=[AddressOut(interface=i, address=a) for i, a in addresses],
        uptime_s=now - service.started_at,
        data_dir=str(service.data_dir),
        data_dir_used_bytes=usage["used_bytes"],
        data_dir_free_bytes=usage["free_bytes"],
        restart_required=service.restart_required,
        parts=[PartOut(**vars(p)) for p in parts],
        gateways=[GatewayOut(**vars(g)) for g in service.gateways()],
    )


metrics_router = APIRouter(tags=["system"])


def _metric_name(variable: str) -> str:
    known = BY_NAME.get(variable)
    suffix = "_total" if known is not None and known.kind in (Kind.ENERGY, Kind.HOURS) else ""
    return f"emsbox_{variable}{suffix}"


@metrics_router.get(
    "/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (token)"
)
async def metrics(service: ServiceDep, _: Viewer) -> str:
    """Every load's latest values and the service's own metrics, in Prometheus text format."""
    # The text format wants every sample of a metric family together, under its HELP/TYPE.
    families: dict[str, list[str]] = {}
    for load, reading in sorted(service.bus.latest_all().items()):
        for variable, value in reading.as_dict().items():
            name = _metric_name(variable)
            if name not in families:
                known = BY_NAME.get(variable)
                counter = known is not None and known.kind in (Kind.ENERGY, Kind.HOURS)
                unit = known.unit if known is not None and known.unit else "no unit"
                families[name] = [
                    f"# HELP {name} {variable} ({unit})",
                    f"# TYPE {name} {'counter' if counter else 'gauge'}",
                ]
            families[name].append(f'{name}{{load="{load}"}} {float(value)!r}')
    lines = [line for family in families.values() for line in family]
    lines.append("# HELP emsbox_uptime_seconds Seconds since the service started")
    lines.append("# TYPE emsbox_uptime_seconds gauge")
    lines.append(f"emsbox_uptime_seconds {time.time() - service.started_at:.3f}")
    lines.append("# HELP emsbox_readings_published_total Readings published on the bus")
    lines.append("# TYPE emsbox_readings_published_total counter")
    lines.append(f"emsbox_readings_published_total {service.bus.published}")
    lines.append("# HELP emsbox_part_healthy Whether a running part is healthy")
    lines.append("# TYPE emsbox_part_healthy gauge")
    for part in await asyncio.to_thread(service.health):
        lines.append(f'emsbox_part_healthy{{part="{part.name}"}} {int(part.healthy)}')
    return "\n".join(lines) + "\n"
