"""The audit middleware: one audit event per request to a route of the audit table.

Why ASGI middleware around the routes: it sees every request the same way, including those refused
before routing (a missing credential) and those that failed, and it records what was actually sent
(status, body bytes) after the response is complete, so writing the event never delays the answer.
It reads the principal only through `principal_of` (anonymous when no authentication layer ran).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.audit.actions import Action, audited_request
from app.audit.events import AuditEvent
from app.audit.notes import noted_rejections, noted_uids
from app.audit.trail import AuditTrail
from app.dicomweb.uids import is_valid_uid
from app.security.principal import anonymous, principal_of

log = logging.getLogger(__name__)

_PATH_UIDS = ("study_instance_uid", "series_instance_uid", "sop_instance_uid")
_MAX_NAME = 255  # the audit_events column


@dataclass(slots=True)
class _Exchange:
    status: int | None = None
    bytes_in: int = 0
    bytes_out: int = 0


class AuditMiddleware:
    """Records each request to a route of the audit table (app/audit/actions.py) with the app's trail."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        trail = _trail_of(scope)
        if scope["type"] != "http" or trail is None:
            await self.app(scope, receive, send)
            return
        started = datetime.now(UTC)
        scope.setdefault("state", {})  # shared by everything below, so their notes reach us
        exchange = _Exchange()

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                exchange.bytes_in += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
            elif message["type"] == "http.response.body":
                exchange.bytes_out += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            try:
                self._record(trail, scope, started, exchange)
            except Exception:  # the audit trail never fails a request
                log.exception("could not build the audit event of %s %s", scope["method"], scope["path"])

    def _record(self, trail: AuditTrail, scope: Scope, started: datetime, exchange: _Exchange) -> None:
        audited = audited_request(scope["method"], _route_path(scope))
        if audited is None:
            return
        action, path_params = audited.route.action, audited.path_params
        principal = principal_of(HTTPConnection(scope)) or anonymous()
        client = scope.get("client")
        studies, series, instances = _path_uids(path_params)
        if (notes := noted_uids(scope["state"])) is not None:
            studies += notes.studies
            series += notes.series
            instances += notes.instances
        if action is Action.READ_AUDIT and (study := _query_value(scope, "study")):
            studies.append(study)
        touched = [(action, studies, series, instances)]
        if (rejected := noted_rejections(scope["state"])) is not None:  # a rejection note was stored
            touched.append((Action.REJECT, rejected.studies, rejected.series, rejected.instances))
        for event_action, event_studies, event_series, event_instances in touched:
            trail.record(
                AuditEvent(
                    time=started,
                    action=event_action,
                    principal_kind=principal.kind.value,
                    principal=principal.name[:_MAX_NAME],
                    username=principal.username[:_MAX_NAME] if principal.username else None,
                    client=client[0][:64] if client else None,
                    method=scope["method"],
                    route=audited.route.path,
                    status=exchange.status or 500,  # nothing sent: the server error handler answers 500
                    bytes_in=exchange.bytes_in,
                    bytes_out=exchange.bytes_out,
                    studies=_unique_uids(event_studies),
                    series=_unique_uids(event_series),
                    instances=_unique_uids(event_instances),
                )
            )


def _trail_of(scope: Scope) -> AuditTrail | None:
    app = scope.get("app")
    trail = getattr(getattr(app, "state", None), "audit", None)
    return trail if isinstance(trail, AuditTrail) else None


def _route_path(scope: Scope) -> str:
    """The path the routes see: without the root path a proxy mounted the app under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _path_uids(path_params: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    study, series, instance = (path_params.get(name) for name in _PATH_UIDS)
    return (
        [study] if study else [],
        [series] if series else [],
        [instance] if instance else [],
    )


def _query_value(scope: Scope, name: str) -> str | None:
    return HTTPConnection(scope).query_params.get(name)


def _unique_uids(uids: list[str]) -> tuple[str, ...]:
    """In first-seen order, without repeats; what is not a UID (a malformed path) is left out."""
    return tuple(uid for uid in dict.fromkeys(uids) if is_valid_uid(uid))
