"""create_app(settings): the FastAPI application, its routers, error handling and lifespan.

Why a factory: no state is built at import time; tests build their own app on temporary paths, and the
CLI builds one from the environment.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from app import __version__
from app.api import (
    admin,
    audit,
    contract,
    deidentified,
    delete,
    metrics,
    qido,
    query_tags,
    rendered,
    stow,
    wado,
)
from app.api.audit_middleware import AuditMiddleware
from app.api.capabilities import add_capabilities_routes
from app.api.hot_routes import install_hot_routes, prefixed
from app.api.request_log import RequestLogMiddleware
from app.api.route_templates import RouteTemplates
from app.api.urls import DICOMWEB_PREFIX
from app.audit.trail import open_audit_trail
from app.dicomweb.errors import DicomwebError, RangeNotSatisfiable
from app.security.middleware import AuthenticationMiddleware
from app.services import Services, open_services
from app.settings import Settings
from app.store.infra.outages import OUTAGES, outage_reason

log = logging.getLogger(__name__)


def error_response(status: int, message: str) -> Response:
    """The one shape of an error body: {"status": ..., "error": "..."} (application/json)."""
    body = orjson.dumps({"status": status, "error": message})
    return Response(body, status_code=status, media_type="application/json")


# Every router and the prefix it is served under, in matching order.
ROUTERS = (
    (stow.router, DICOMWEB_PREFIX),
    (wado.router, DICOMWEB_PREFIX),
    (qido.router, DICOMWEB_PREFIX),
    (rendered.router, DICOMWEB_PREFIX),
    (deidentified.router, DICOMWEB_PREFIX),
    (contract.router, DICOMWEB_PREFIX),
    (delete.router, DICOMWEB_PREFIX),
    (admin.router, ""),
    (metrics.router, ""),
    (audit.router, ""),
    (query_tags.router, ""),
)

# Found before the router walks its routes (app/api/hot_routes.py): probes and the frames resource.
HOT_ROUTES = (*admin.PROBE_ROUTES, prefixed(wado.FRAMES_ROUTE, DICOMWEB_PREFIX))


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """The Fovea ASGI app; opens its services at start-up unless given ready-made ones."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or open_services(settings)
        audit_trail = None
        try:
            engine = app.state.services.engine
            audit_trail = app.state.audit = open_audit_trail(
                settings.audit_log, engine if settings.audit_db else None, settings.audit_syslog
            )
            if owned:
                await app.state.services.ingest.warm_up()
            yield
        finally:
            if audit_trail is not None:
                audit_trail.close()  # writes what is queued, while the engine is still open
            if owned:
                app.state.services.close()
            tracer_provider = getattr(app.state, "tracer_provider", None)
            if tracer_provider is not None:
                tracer_provider.shutdown()  # sends the spans still queued

    app = FastAPI(
        title="Fovea",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # the published contract is openapi/openapi.yaml, served by api/contract.py
        # Requests are traced by app/tracing.py's instrumentor (FOVEA_OTEL_ENABLED) and counted by
        # app/metrics.py; FastAPI's own telemetry would double them, and asks the OpenTelemetry
        # globals on every request whether it is on.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )

    retry_after = str(settings.retry_after_s)

    @app.exception_handler(DicomwebError)
    async def _dicomweb_error(_request: Request, exc: DicomwebError) -> Response:
        response = error_response(exc.status, exc.message)
        if isinstance(exc, RangeNotSatisfiable):
            response.headers["Content-Range"] = f"bytes */{exc.length}"
        if exc.status == 503:
            response.headers["Retry-After"] = retry_after
        return response

    async def _store_unavailable(request: Request, exc: Exception) -> Response:
        # An outage of the index or blob store, on any route: 503 at once (every call has a timeout).
        reason = outage_reason(exc)
        log.warning("%s %s answered 503: %s", request.method, request.url.path, reason)
        response = error_response(503, reason)
        response.headers["Retry-After"] = retry_after
        return response

    for outage in OUTAGES:
        app.add_exception_handler(outage, _store_unavailable)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        # Routing errors (404 unknown path, 405 wrong method) in the same shape as ours.
        response = error_response(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    for router, prefix in ROUTERS:
        app.include_router(router, prefix=prefix)
    answer_head_as_get(route for router, _ in ROUTERS for route in router.routes)
    add_capabilities_routes(app)  # OPTIONS on what the routers above serve
    install_hot_routes(app.router, HOT_ROUTES)
    # Added before CORS so that CORS wraps it: browsers can then read a 401's headers.
    app.add_middleware(AuthenticationMiddleware, settings=settings)
    # Outside the authentication middleware, so refused requests are recorded.
    app.add_middleware(AuditMiddleware)
    if settings.cors_origin_list:
        add_cors(app, settings.cors_origin_list)
    # Last added, outermost: it sees every answer, preflights too.
    app.add_middleware(RequestLogMiddleware, templates=RouteTemplates.of(ROUTERS))
    if settings.otel_enabled:  # the packages are imported only then (app/tracing.py)
        from app.tracing import trace_requests

        app.state.tracer_provider = trace_requests(app)
    return app


def answer_head_as_get(routes: Iterable[object]) -> None:
    """HEAD on every resource GET serves (RFC 9110 9.3.2): the same status and headers, no content.

    FastAPI routes answer only the methods they name, so HEAD was 405 wherever a route said GET. The
    GET handler answers it (authorised, audited and conditional alike) and uvicorn sends its headers
    without the body; a streamed body is not made past what was made before streaming began
    (api/wado_request.py `StreamedResponse`).
    """
    for route in routes:
        if isinstance(route, APIRoute) and route.methods and "GET" in route.methods:
            route.methods.add("HEAD")


# Browsers send these on DICOMweb requests (Authorization for tokens, Accept for multipart choices).
CORS_ALLOWED_HEADERS = [
    "Authorization",
    "X-API-Key",
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
    "X-Request-ID",
    "WWW-Authenticate",  # why a 401/403 was answered
]


def add_cors(app: FastAPI, origins: list[str]) -> None:
    """Cross-origin access for web viewers served from other origins (OHIF, Cornerstone apps)."""
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "HEAD", "POST", "DELETE", "OPTIONS"],
        allow_headers=CORS_ALLOWED_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        max_age=600,
    )
