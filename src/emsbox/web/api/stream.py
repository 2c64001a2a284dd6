"""A live stream of readings as server-sent events (SSE)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from emsbox.bus import Reading, WindowValues
from emsbox.web.api.deps import ServiceDep, Viewer
from emsbox.web.api.timeparams import iso

router = APIRouter(tags=["live"])
POLL_S = 0.1
KEEPALIVE_S = 15.0


def _event(kind: str, load: str, t_s: float, values: dict[str, float | int | bool]) -> str:
    data = json.dumps({"load": load, "timestamp": iso(t_s), "timestamp_s": t_s, "values": values})
    return f"event: {kind}\ndata: {data}\n\n"


@router.get(
    "/stream",
    summary="Live readings (server-sent events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    service: ServiceDep,
    _: Viewer,
    loads: Annotated[
        str | None, Query(description="Comma-separated load names; default: every load.")
    ] = None,
    fast: Annotated[
        bool, Query(description="Also send every measurement window (10/12 cycles).")
    ] = False,
) -> StreamingResponse:
    """Every new reading as an SSE ``reading`` event (and ``window`` events when fast)."""
    wanted = set(service.load_names())
    if loads:
        asked = {n.strip() for n in loads.split(",") if n.strip()}
        unknown = sorted(asked - wanted)
        if unknown:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no load named {unknown[0]!r}")
        wanted = asked

    async def events() -> AsyncIterator[str]:
        sub = service.bus.subscribe(fast=fast)
        try:
            # The latest readings first, so a new client shows values at once.
            for load, reading in service.bus.latest_all().items():
                if load in wanted:
                    yield _event("reading", load, reading.timestamp_s, reading.as_dict())
            idle = 0.0
            while not await request.is_disconnected():
                messages = sub.drain()
                for m in messages:
                    if m.load not in wanted:
                        continue
                    if isinstance(m, Reading):
                        yield _event("reading", m.load, m.timestamp_s, m.as_dict())
                    elif isinstance(m, WindowValues):
                        yield _event("window", m.load, m.start_s, dict(m.values))
                idle = 0.0 if messages else idle + POLL_S
                if idle >= KEEPALIVE_S:
                    idle = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(POLL_S)
        finally:
            service.bus.unsubscribe(sub)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )
