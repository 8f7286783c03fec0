"""GET /admin/audit: the audit trail kept in the index database, as JSON (admin scope).

Events this process recorded moments ago are written before the query runs, so a client reads its
own requests back; other processes' events appear within a moment of their responses.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import OperationalError

from app.api.deps import get_services
from app.audit.queries import DEFAULT_LIMIT, AuditQuery, BadAuditQuery, find_events, parse_when
from app.audit.trail import AuditTrail
from app.dicomweb.errors import BadRequest, NotFound, ServiceUnavailable
from app.dicomweb.uids import require_valid_uid
from app.services import Services

router = APIRouter(tags=["admin"])
_FLUSH_SECONDS = 5.0


def _audit_query(request: Request) -> AuditQuery:
    params = request.query_params
    try:
        study = params.get("study")
        if study is not None:
            require_valid_uid(study, "Study Instance UID")
        limit_text = params.get("limit", str(DEFAULT_LIMIT))
        if not limit_text.isdigit():
            raise BadAuditQuery(f"limit must be a positive integer, not {limit_text[:40]!r}")
        since, until = params.get("since"), params.get("until")
        return AuditQuery(
            study=study,
            principal=params.get("principal"),
            since=parse_when(since) if since else None,
            until=parse_when(until) if until else None,
            limit=int(limit_text),
        )
    except BadAuditQuery as exc:
        raise BadRequest(str(exc)) from exc


def _read_events(services: Services, trail: AuditTrail, query: AuditQuery) -> bytes:
    trail.flush(_FLUSH_SECONDS)
    try:
        with services.engine.connect() as connection:
            return orjson.dumps(find_events(connection, query))
    except OperationalError as exc:
        raise ServiceUnavailable(f"the index database is unavailable: {type(exc.orig).__name__}") from exc


@router.get("/admin/audit", summary="Read the audit trail (admin scope)")
async def read_audit_trail(request: Request) -> Response:
    services = get_services(request)
    query = _audit_query(request)
    trail: AuditTrail = request.app.state.audit
    if not trail.in_database:
        raise NotFound("the audit trail is not kept in the index database (FOVEA_AUDIT_DB=false)")
    body = await services.run_blocking(_read_events, services, trail, query)
    return Response(body, media_type="application/json")
