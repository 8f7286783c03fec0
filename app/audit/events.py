"""The audit record of one request, and its JSON form (one line of the JSON lines sink, one API item)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from app.audit.actions import Action


def new_event_id() -> str:
    return secrets.token_hex(16)  # 128 random bits, as a UUID4 has, at a fifth of the cost


# Not frozen: one is built on every audited request, and a frozen dataclass's __init__ costs several
# times as much (each field set through object.__setattr__). Nothing changes an event once built.
@dataclass(frozen=True, slots=True)
class WrittenFile:
    """A file an export wrote: its path under the output folder, SHA-256 (hex) and size."""

    path: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(slots=True)
class AuditEvent:
    """Who did what to which patient data, from where, and how it ended.

    `principal` is the API key's name, the OIDC `sub`, the share token's id or "anonymous";
    `username` the OIDC `preferred_username` where there is one. `status` is the HTTP status sent
    (500 when the request failed before answering). `bytes_in`/`bytes_out` count the request and
    response bodies as they crossed the wire.
    """

    time: datetime  # when the request arrived, UTC
    action: Action
    principal_kind: str
    principal: str
    username: str | None
    client: str | None  # the peer address (the proxy's, unless the server trusts forwarded headers)
    method: str
    route: str  # the route template: the UIDs are in the fields below, never anything else of the URL
    status: int
    bytes_in: int
    bytes_out: int
    studies: tuple[str, ...] = ()
    series: tuple[str, ...] = ()
    instances: tuple[str, ...] = ()
    files: tuple[WrittenFile, ...] = ()  # what an export wrote (none for a request)
    id: str = field(default_factory=new_event_id)

    def to_json(self) -> dict[str, Any]:
        """The event as JSON; `files` only where the event wrote some."""
        record: dict[str, Any] = {
            "id": self.id,
            "time": self.time.isoformat(),
            "action": self.action.value,
            "principal_kind": self.principal_kind,
            "principal": self.principal,
            "username": self.username,
            "client": self.client,
            "method": self.method,
            "route": self.route,
            "status": self.status,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "studies": list(self.studies),
            "series": list(self.series),
            "instances": list(self.instances),
        }
        if self.files:
            record["files"] = [written.to_json() for written in self.files]
        return record

    def json_line(self) -> str:
        return orjson.dumps(self.to_json()).decode()
