"""One log line per HTTP request, and the request ID that ties a request's lines together.

Why a pure ASGI middleware: it wraps every request, so it must cost microseconds (no Request objects, no
thread hops); the line itself is written by the logging queue's thread (app/log_setup.py).

The request ID is the client's `X-Request-ID` when it is a plausible one (1 to 128 visible characters),
otherwise a fresh one; it is echoed on the response and attached to every record logged meanwhile.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.route_templates import RouteTemplates
from app.log_setup import REQUEST_FIELDS, current_request_id
from app.metrics import HTTP_DURATION, HTTP_REQUESTS, UNMATCHED_ROUTE

log = logging.getLogger("fovea.request")
_PLAUSIBLE_ID = re.compile(rb"[!-~]{1,128}")  # printable ASCII, no spaces: safe to echo and to log
_HEADER = b"x-request-id"


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == _HEADER:
            return value.decode("ascii") if _PLAUSIBLE_ID.fullmatch(value) else None
    return None


_IDS_PER_DRAW = 256
_fresh_ids: list[str] = []


def fresh_request_id() -> str:
    """A random version-4 UUID as 32 hex digits, as `uuid.uuid4().hex` makes it.

    Why drawn in batches: one `getrandom` call per request, and the thread switch it invites, cost more
    than the rest of the ID. `list.pop` is atomic, so threads never share an ID; two refilling at once
    only draw more.
    """
    try:
        return _fresh_ids.pop()
    except IndexError:
        pool = os.urandom(16 * _IDS_PER_DRAW)
        _fresh_ids.extend(
            uuid.UUID(bytes=pool[start : start + 16], version=4).hex for start in range(0, len(pool), 16)
        )
        return _fresh_ids.pop()


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, templates: RouteTemplates) -> None:
        self.app = app
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or fresh_request_id()
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        outcome = {"status": 500, "bytes": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                headers = [*message.get("headers", ()), (_HEADER, request_id.encode())]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                outcome["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            template = self.templates.match(scope["path"])
            _count_request(scope["method"], template, outcome["status"], seconds)
            _log_request(scope, template, outcome["status"], outcome["bytes"], seconds)
            current_request_id.reset(token)


# The labelled metric children of each (method, route, status) seen: `labels()` takes a lock and builds a
# key on every call. Bounded, as methods are the client's to choose (past the bound, looked up each time).
_MAX_LABELLED = 512
_labelled: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _count_request(method: str, template: str | None, status: int, seconds: float) -> None:
    key = (method, template or UNMATCHED_ROUTE, status)
    children = _labelled.get(key)
    if children is None:
        route = key[1]
        children = (HTTP_REQUESTS.labels(method, route, str(status)), HTTP_DURATION.labels(method, route))
        if len(_labelled) < _MAX_LABELLED:
            _labelled[key] = children
    requests, duration = children
    requests.inc()
    duration.observe(seconds)


def _log_request(scope: Scope, template: str | None, status: int, sent: int, seconds: float) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    fields: dict[str, Any] = {
        "method": scope["method"],
        "path": scope["path"],
        "route": template,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "bytes": sent,
        "client": client[0] if client else None,
    }
    principal = scope.get("state", {}).get("principal")
    if principal is not None:
        fields["principal"] = getattr(principal, "name", None)
    # A record made directly: `log.info` would walk the stack to find its caller, a quarter of the cost.
    args = (fields["method"], fields["path"], status, fields["duration_ms"], sent)
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, _LINE, args, None, extra=_extra(fields))
    log.handle(record)


_LINE = "%s %s %d %.1f ms %d B"


def _extra(fields: dict[str, Any]) -> dict[str, Any]:
    return {REQUEST_FIELDS: fields}
