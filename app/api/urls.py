"""Absolute URLs of DICOMweb resources, as the client sees them (RetrieveURL, BulkDataURI).

Why: behind a reverse proxy the server's own address is not the client's. The configured public base
URL wins; otherwise X-Forwarded-Proto/-Host/-Prefix (set by the proxy) are honoured, then the request's
own scheme and Host header. Those headers reach this code only from peers in FOVEA_TRUSTED_PROXIES: the
authentication middleware (app/security/proxies.py) removes them from every other request.
"""

from __future__ import annotations

import re

from starlette.requests import Request

DICOMWEB_PREFIX = "/dicom-web"
_TOKEN = re.compile(r"[A-Za-z0-9.\-:\[\]]+")  # a host[:port]; anything else is ignored
_PREFIX = re.compile(r"(/[A-Za-z0-9._~\-]+)*/?")


def _first(value: str | None) -> str:
    """The first (client-most) entry of a possibly comma-separated forwarded header."""
    return (value or "").split(",")[0].strip()


def dicomweb_base_url(request: Request, public_base_url: str | None) -> str:
    """The absolute URL of the DICOMweb root, without a trailing slash."""
    if public_base_url:
        return public_base_url
    headers = request.headers
    scheme = _first(headers.get("x-forwarded-proto")).lower()
    if scheme not in ("http", "https"):
        scheme = request.scope.get("scheme", "http")  # what request.url reads, without building it
    candidates = (_first(headers.get("x-forwarded-host")), headers.get("host", ""))
    host = next((c for c in candidates if _TOKEN.fullmatch(c)), "")
    if not host:
        server_host, server_port = request.scope.get("server") or ("localhost", 80)
        host = f"{server_host}:{server_port}"
    prefix = _first(headers.get("x-forwarded-prefix"))
    prefix = prefix.rstrip("/") if _PREFIX.fullmatch(prefix) else ""
    return f"{scheme}://{host}{prefix}{DICOMWEB_PREFIX}"
