"""Operational endpoints: liveness (`/livez`) and readiness (`/readyz`, and `/health`, its older name).

Why two: an orchestrator restarts a process whose liveness probe fails, and only stops sending traffic
to one whose readiness probe fails. An outage of the database or the object store is not cured by a
restart, so liveness touches nothing but the event loop, and readiness checks the index (reachable,
schema at the newest migration) and the blob store, each within `FOVEA_READINESS_TIMEOUT_S`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app import __version__
from app.api.deps import ServicesDep
from app.services import Services
from app.store.blobs import BlobStoreError
from app.store.db import schema_is_current

router = APIRouter(tags=["admin"])


@router.get("/livez", summary="The process runs and its event loop answers (no I/O)")
async def livez() -> JSONResponse:
    return JSONResponse({"status": "alive", "version": __version__})


@router.api_route("/readyz", methods=["GET", "HEAD"], summary="Index and blob store usable")
async def readyz(services: ServicesDep) -> JSONResponse:
    return await _readiness(services)


@router.api_route("/health", methods=["GET", "HEAD"], summary="Index and blob store usable (as /readyz)")
async def health(services: ServicesDep) -> JSONResponse:
    return await _readiness(services)


async def _readiness(services: Services) -> JSONResponse:
    timeout = services.settings.readiness_timeout_s
    checks = {"index": _check_index, "blobs": _check_blobs}
    results = await asyncio.gather(
        *(_within(timeout, services.run_blocking(check, services)) for check in checks.values())
    )
    problems = {name: problem for name, problem in zip(checks, results, strict=True) if problem}
    if problems:
        headers = {"Retry-After": str(services.settings.retry_after_s)}
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503, headers=headers)
    return JSONResponse({"status": "ok", "version": __version__})


async def _within(timeout: float, check: Awaitable[str | None]) -> str | None:
    try:
        return await asyncio.wait_for(check, timeout)
    except TimeoutError:  # the thread goes on until the part's own timeout; the probe does not wait
        return f"no answer within {timeout:g} s"


def _check_index(services: Services) -> str | None:
    try:
        with services.engine.connect() as connection:
            if not schema_is_current(connection):
                return "schema is not at the newest migration: run `fovea migrate`"
    except SQLAlchemyError as exc:
        return type(exc).__name__
    return None


def _check_blobs(services: Services) -> str | None:
    try:
        services.blobs.check()
    except BlobStoreError as exc:
        return str(exc)
    return None
