"""The OHIF Viewer's production build served as it ships, with an app-config.js pointing at Fovea.

Why our own server: OHIF reads its configuration from /app-config.js at start-up, and its routes
(/viewer?StudyInstanceUIDs=...) are client-side, so every unknown path must answer index.html.
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

DATA_SOURCE_NAME = "fovea"

# OHIF's own frames Accept is `multipart/related; type=application/octet-stream; transfer-syntax=*`, which
# Fovea answers with uncompressed frames, decoding compressed ones (octet-stream never labels compressed
# bytes). Offering image/jp2 as well, at the same q, lets Fovea send JPEG 2000 frames as stored (it
# prefers the range that needs no transcoding), so the viewer's own decoder draws them.
AS_STORED_JPEG2000_ACCEPT = (
    'multipart/related; type="application/octet-stream"; transfer-syntax=*, '
    'multipart/related; type="image/jp2"; transfer-syntax=*'
)


def ohif_config(
    dicomweb_url: str, frames_accept: str | None = None, *, server_thumbnails: bool = False
) -> dict[str, object]:
    """A minimal OHIF v3 configuration with one DICOMweb data source: Fovea at dicomweb_url.

    frames_accept replaces the Accept header OHIF sends for frames; None keeps OHIF's own.
    server_thumbnails: the series thumbnails are Fovea's thumbnail resources (OHIF asks them with
    `?accept=image/jpeg`), not drawn by OHIF from frames.
    """
    data_source: dict[str, object] = {
        "friendlyName": "Fovea",
        "name": DATA_SOURCE_NAME,
        "qidoRoot": dicomweb_url,
        "wadoRoot": dicomweb_url,
        "wadoUriRoot": dicomweb_url,
        "imageRendering": "wadors",
        "thumbnailRendering": "thumbnail" if server_thumbnails else "wadors",
        "enableStudyLazyLoad": True,
        "supportsFuzzyMatching": True,
        "supportsWildcard": True,
        "omitQuotationForMultipartRequest": True,
        "bulkDataURI": {"enabled": True},
    }
    if frames_accept is not None:
        data_source["acceptHeader"] = [frames_accept]
    return {
        "routerBasename": "/",
        "extensions": [],
        "modes": [],
        "showStudyList": True,
        # The "investigational use" banner would cover the bottom of the viewport we screenshot.
        "investigationalUseDialog": {"option": "never"},
        # Nor should the onboarding tour cover the viewer in the screenshots.
        "customizationService": {"ohif.tours": {"$set": []}},
        "defaultDataSourceName": DATA_SOURCE_NAME,
        "dataSources": [
            {
                "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
                "sourceName": DATA_SOURCE_NAME,
                "configuration": data_source,
            }
        ],
    }


def app_config_js(config: dict[str, object]) -> str:
    return f"window.config = {json.dumps(config, indent=2)};\n"


def ohif_static_app(dist: Path, config: dict[str, object]) -> Starlette:
    """Files of dist unchanged; /app-config.js from config; any other path index.html (SPA routes)."""
    root = dist.resolve()
    config_js = app_config_js(config)

    async def app_config(_request: Request) -> Response:
        return Response(config_js, media_type="text/javascript")

    async def file_or_index(request: Request) -> Response:
        candidate = (root / request.path_params["path"]).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            return FileResponse(candidate)
        return FileResponse(root / "index.html")

    return Starlette(
        routes=[
            Route("/app-config.js", app_config),
            Route("/{path:path}", file_or_index),
        ]
    )
