"""REST API v1: one router per resource, JSON errors, OpenAPI at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse

from emsbox import __version__
from emsbox.app import Service
from emsbox.config import key_path
from emsbox.web.api import accounts_routes, config_routes, loads, stream, system

PREFIX = "/api/v1"


def create_app(service: Service) -> FastAPI:
    """The web application of ``service``."""
    app = FastAPI(
        title="emsbox API",
        version=__version__,
        description=(
            "Live and logged values of every load, energy per period, configuration and "
            "accounts. Authenticate with an API token (`Authorization: Bearer ...`) or a "
            "session cookie from `POST /api/v1/login`."
        ),
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    app.state.service = service
    for router in (
        loads.router,
        config_routes.router,
        system.router,
        stream.router,
        accounts_routes.router,
    ):
        app.include_router(router, prefix=PREFIX)
    app.include_router(system.metrics_router)
    _add_error_handlers(app)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/docs")

    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is JSON ``{"detail": message}``; bad parameters are 4xx, never 500."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems: list[str] = []
        for item in exc.errors():
            message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append(f"{key_path(item.get('loc', ()))}: {message}")
        body: dict[str, Any] = {"detail": "; ".join(problems), "problems": problems}
        return JSONResponse(body, status_code=422)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
