"""The Modbus gateway's register maps, as a list and as CSV files to download."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from emsbox.gateways.modbus.map_export import MAPS, as_csv
from emsbox.web.api.deps import Viewer

router = APIRouter(prefix="/modbus", tags=["modbus"])


class MapOut(BaseModel):
    """One register map."""

    name: str
    title: str
    points: int
    csv: str = Field(description="Path of its CSV file.")


@router.get("/maps", response_model=list[MapOut], summary="The register maps")
async def maps(_: Viewer) -> list[MapOut]:
    """Every register map the gateway serves, with the path of its CSV file."""
    return [
        MapOut(name=name, title=title, points=len(rows), csv=f"/api/v1/modbus/maps/{name}.csv")
        for name, (title, rows) in MAPS.items()
    ]


@router.get(
    "/maps/{name}.csv",
    response_class=PlainTextResponse,
    summary="A register map as CSV",
    responses={404: {"description": "No map of that name."}},
)
async def map_csv(name: str, _: Viewer) -> PlainTextResponse:
    """One point per line: 0-based address, 1-based register, name, type, size, variable,
    scale from the variable's unit, the register's unit and the meaning."""
    if name not in MAPS:
        raise HTTPException(404, f"no register map named {name!r}; known: {', '.join(MAPS)}")
    return PlainTextResponse(
        as_csv(name),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="emsbox-modbus-{name}.csv"'},
    )
