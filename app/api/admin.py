"""Operational endpoints: health."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import __version__
from app.api.deps import ServicesDep
from app.store.blobs import BlobStoreError

router = APIRouter(tags=["admin"])


@router.api_route("/health", methods=["GET", "HEAD"], summary="Index and blob store reachable")
def health(services: ServicesDep) -> JSONResponse:
    problems = {}
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        problems["index"] = type(exc).__name__
    try:
        services.blobs.check()
    except BlobStoreError as exc:
        problems["blobs"] = str(exc)
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ok", "version": __version__})
