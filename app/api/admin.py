"""Operational endpoints: health."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import __version__
from app.api.deps import ServicesDep

router = APIRouter(tags=["admin"])


@router.get("/health", summary="Liveness and index connectivity")
def health(services: ServicesDep) -> JSONResponse:
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "error": str(exc.__class__.__name__)}, status_code=503)
    return JSONResponse({"status": "ok", "version": __version__})
