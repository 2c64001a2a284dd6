"""REST API v1: one router per resource, JSON errors, OpenAPI at /api/v1/openapi.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware

from emsbox import __version__
from emsbox.app import Service
from emsbox.config import key_path
from emsbox.store.log import StoreError
from emsbox.web.api import (
    accounts_routes,
    alarms_routes,
    config_routes,
    email_routes,
    io_routes,
    loads,
    modbus_routes,
    mqtt_routes,
    setup_routes,
    stream,
    system,
    variables_routes,
)
from emsbox.web.api.deps import Viewer

PREFIX = "/api/v1"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# The interactive docs page's library, kept in static/vendor so it works offline.
SWAGGER = "swagger-ui-dist-5.35.0"
# The web app loads nothing from elsewhere (it works offline) and runs no inline code.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


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
        # Served below behind authentication, like every endpoint but health and login.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    for router in (
        loads.router,
        config_routes.router,
        system.router,
        stream.router,
        accounts_routes.router,
        setup_routes.router,
        variables_routes.router,
        modbus_routes.router,
        mqtt_routes.router,
        io_routes.router,
        alarms_routes.router,
        email_routes.router,
    ):
        app.include_router(router, prefix=PREFIX)
    app.include_router(system.metrics_router)
    _add_error_handlers(app)

    # The web app's files travel compressed (a third of their size: the chart library alone
    # is 145 kB); the API's answers do not, as the most frequent ones are small.
    static = GZipMiddleware(StaticFiles(directory=STATIC_DIR), minimum_size=1024)
    app.mount("/static", static, name="static")

    @app.get("/", include_in_schema=False)
    async def web_app() -> FileResponse:
        # The one page of the web app; everything else it needs is under /static/app.
        return FileResponse(STATIC_DIR / "app" / "index.html", headers=PAGE_HEADERS)

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    async def openapi(_: Viewer) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get(f"{PREFIX}/docs", include_in_schema=False)
    async def docs(_: Viewer) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{PREFIX}/openapi.json",
            title="emsbox API",
            swagger_js_url=f"/static/vendor/{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"/static/vendor/{SWAGGER}/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is JSON ``{"detail": message}``; bad parameters are 4xx, never 500."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        body: dict[str, Any] = {"detail": exc.detail}
        if isinstance(exc.detail, dict):  # {"message", "problems"} of a refused configuration
            body = {"detail": exc.detail["message"], "problems": exc.detail["problems"]}
            if "errors" in exc.detail:  # the same by field, for forms
                body["errors"] = exc.detail["errors"]
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        message = " ".join(str(exc).split())
        return JSONResponse({"detail": f"the log is unavailable: {message}"}, status_code=503)

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
    app.add_exception_handler(StoreError, store_unavailable)
