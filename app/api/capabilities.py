"""Retrieve Capabilities (PS3.18 8.9): OPTIONS on the DICOMweb base and on every DICOMweb resource.

Why routes added after the others: the description is made from the routes the app actually serves
(app/dicomweb/capabilities.py), so they must all be known first; and an OPTIONS route exists only for
a served path, so an unknown path stays 404. OPTIONS needs no credentials (it is also the CORS
preflight, answered before routing by the CORS middleware when CORS is configured); the description
holds no patient data. The base describes every resource; a resource describes itself and the resources
below it, and its `Allow` header lists its methods.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from fastapi import FastAPI, routing
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.urls import DICOMWEB_PREFIX, dicomweb_base_url
from app.dicomweb.capabilities import (
    JSON,
    Resource,
    capabilities_json,
    capabilities_wadl,
    negotiate_capabilities_type,
    resource,
)

NOT_DICOMWEB = frozenset({f"{DICOMWEB_PREFIX}/openapi.json"})  # the published contract, not a resource
_CONVERTER = re.compile(r"\{(\w+):\w+\}")  # {bulkdata_path:path} -> {bulkdata_path}


def served_resources(app: FastAPI) -> dict[str, set[str]]:
    """Every DICOMweb route template the app serves (with the prefix), and its methods."""
    flatten = getattr(routing, "iter_route_contexts", None)  # FastAPI 0.165 nests included routers
    routes: Iterable[Any] = flatten(app.routes) if flatten is not None else app.routes
    served: dict[str, set[str]] = {}
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if not path or not methods or path in NOT_DICOMWEB or not path.startswith(DICOMWEB_PREFIX + "/"):
            continue
        served.setdefault(path, set()).update(methods)
    return served


def add_capabilities_routes(app: FastAPI) -> None:
    """Add OPTIONS to the base and to each served DICOMweb resource (call after every router)."""
    served = served_resources(app)
    resources = [
        resource(_CONVERTER.sub(r"{\1}", template).removeprefix(DICOMWEB_PREFIX + "/"), methods)
        for template, methods in served.items()
    ]
    for base in (DICOMWEB_PREFIX, DICOMWEB_PREFIX + "/"):
        app.router.routes.append(Route(base, _describe(resources, {"OPTIONS"}), methods=["OPTIONS"]))
    for template, methods in served.items():
        path = _CONVERTER.sub(r"{\1}", template).removeprefix(DICOMWEB_PREFIX + "/")
        below = [item for item in resources if item.path == path or item.path.startswith(path + "/")]
        allowed = {*methods, "OPTIONS"}
        app.router.routes.append(Route(template, _describe(below, allowed), methods=["OPTIONS"]))


def _describe(resources: list[Resource], allowed: set[str]) -> Callable[[Request], Awaitable[Response]]:
    allow = ", ".join(sorted(allowed))

    async def describe(request: Request) -> Response:
        media_type = negotiate_capabilities_type(request.headers.get("accept"))
        base = dicomweb_base_url(request, request.app.state.services.settings.public_base_url)
        if media_type == JSON:
            body = orjson.dumps(capabilities_json(base, resources))
        else:
            body = capabilities_wadl(base, resources)
        return Response(body, media_type=media_type, headers={"Allow": allow, "Vary": "Accept"})

    return describe
