"""The vocabulary of measured values (VARIABLES.md): name, unit, kind and meaning of each."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from emsbox.variables import ALL
from emsbox.web.api.deps import Viewer

router = APIRouter(tags=["loads"])


class VariableOut(BaseModel):
    """One variable as VARIABLES.md defines it."""

    name: str
    unit: str
    kind: str
    description: str
    phase: str | None


_ALL = [
    VariableOut(
        name=v.name, unit=v.unit, kind=v.kind.value, description=v.description, phase=v.phase
    )
    for v in ALL
]


@router.get("/variables", response_model=list[VariableOut], summary="Every variable")
async def variables(_: Viewer) -> list[VariableOut]:
    """Every variable a load may have (each has those of its wiring), with unit and meaning."""
    return _ALL
