"""Operational endpoints: liveness (`/livez`) and readiness (`/readyz`, and `/health`, its older name).

Why two: an orchestrator restarts a process whose liveness probe fails, and only stops sending traffic
to one whose readiness probe fails. An outage of the database or the object store is not cured by a
restart, so liveness touches nothing but the event loop, and readiness checks the index (reachable,
schema at the newest migration) and the blob store, each within `FOVEA_READINESS_TIMEOUT_S`.

A successful check is reused for `FOVEA_READINESS_CACHE_S` (a failure never is), and probes arriving
while a check runs wait for that one: a load balancer probing every few hundred milliseconds costs
the index one query per interval, and `/health` answers without a thread hop most of the time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import Route

from app import __version__
from app.api.deps import get_services
from app.services import Services
from app.store.infra.blobs import BlobStoreError
from app.store.infra.db import schema_is_current

router = APIRouter(tags=["admin"])


@router.get("/livez", summary="The process runs and its event loop answers (no I/O)")
async def livez() -> JSONResponse:
    return JSONResponse({"status": "alive", "version": __version__})


async def readyz(request: Request) -> JSONResponse:
    return await _readiness(get_services(request))


# Plain Starlette routes, not FastAPI ones: readiness probes arrive every few hundred milliseconds from
# every load balancer, and need no parameter validation or dependency solving (app/api/hot_routes.py).
PROBE_ROUTES = (
    Route("/readyz", readyz, methods=["GET", "HEAD"], name="readyz"),
    Route("/health", readyz, methods=["GET", "HEAD"], name="health"),
)
router.routes.extend(PROBE_ROUTES)


async def _readiness(services: Services) -> JSONResponse:
    memo = services.readiness
    if time.monotonic() - memo.ok_at < services.settings.readiness_cache_s:
        return JSONResponse({"status": "ok", "version": __version__})
    if memo.running is None:
        memo.running = asyncio.ensure_future(_problems(services))
        memo.running.add_done_callback(lambda _: setattr(memo, "running", None))
    problems = await asyncio.shield(memo.running)
    if problems:
        headers = {"Retry-After": str(services.settings.retry_after_s)}
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503, headers=headers)
    return JSONResponse({"status": "ok", "version": __version__})


async def _problems(services: Services) -> dict[str, str]:
    started = time.monotonic()
    timeout = services.settings.readiness_timeout_s
    checks = {"index": _check_index, "blobs": _check_blobs}
    results = await asyncio.gather(
        *(_within(timeout, services.run_blocking(check, services)) for check in checks.values())
    )
    problems = {name: problem for name, problem in zip(checks, results, strict=True) if problem}
    if not problems:
        services.readiness.ok_at = started
    return problems


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
