"""create_app(settings): the FastAPI application, its routers, error handling and lifespan.

Why a factory: no state is built at import time; tests build their own app on temporary paths, and the
CLI builds one from the environment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from app import __version__
from app.api import admin, contract, qido, rendered, stow, wado
from app.api.urls import DICOMWEB_PREFIX
from app.dicomweb.errors import DicomwebError, RangeNotSatisfiable
from app.services import Services, open_services
from app.settings import Settings


def error_response(status: int, message: str) -> Response:
    """The one shape of an error body: {"status": ..., "error": "..."} (application/json)."""
    body = orjson.dumps({"status": status, "error": message})
    return Response(body, status_code=status, media_type="application/json")


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """The Fovea ASGI app; opens its services at start-up unless given ready-made ones."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or open_services(settings)
        try:
            if owned:
                await app.state.services.ingest.warm_up()
            yield
        finally:
            if owned:
                app.state.services.close()

    app = FastAPI(
        title="Fovea",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # the published contract is openapi/openapi.yaml, served by api/contract.py
    )

    @app.exception_handler(DicomwebError)
    async def _dicomweb_error(_request: Request, exc: DicomwebError) -> Response:
        response = error_response(exc.status, exc.message)
        if isinstance(exc, RangeNotSatisfiable):
            response.headers["Content-Range"] = f"bytes */{exc.length}"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        # Routing errors (404 unknown path, 405 wrong method) in the same shape as ours.
        response = error_response(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    app.include_router(stow.router, prefix=DICOMWEB_PREFIX)
    app.include_router(wado.router, prefix=DICOMWEB_PREFIX)
    app.include_router(qido.router, prefix=DICOMWEB_PREFIX)
    app.include_router(rendered.router, prefix=DICOMWEB_PREFIX)
    app.include_router(contract.router, prefix=DICOMWEB_PREFIX)
    app.include_router(admin.router)
    if settings.cors_origin_list:
        add_cors(app, settings.cors_origin_list)
    return app


# Browsers send these on DICOMweb requests (Authorization for tokens, Accept for multipart choices).
CORS_ALLOWED_HEADERS = [
    "Authorization",
    "Accept",
    "Content-Type",
    "Range",
    "If-None-Match",
    "If-Modified-Since",
]
# And may read these from responses: the part type, where a resource lives, truncated searches.
CORS_EXPOSED_HEADERS = [
    "Content-Type",
    "Content-Location",
    "Warning",
    "Content-Length",
    "Content-Range",
    "ETag",
    "Fovea-Window",
]


def add_cors(app: FastAPI, origins: list[str]) -> None:
    """Cross-origin access for web viewers served from other origins (OHIF, Cornerstone apps)."""
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
        allow_headers=CORS_ALLOWED_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        max_age=600,
    )
