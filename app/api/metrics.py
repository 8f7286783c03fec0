"""GET /metrics: the Prometheus text exposition (app/metrics.py defines what is in it)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.metrics import exposition

router = APIRouter(tags=["admin"])


@router.get("/metrics", summary="Prometheus metrics")
def metrics() -> Response:
    body, media_type = exposition()
    return Response(body, media_type=media_type)
