"""Reading the audit trail back from the index: `fovea audit` and `GET /admin/audit`.

A query names what to look for (a study, a principal, a time window); the answer is the latest
`limit` matching events, oldest first, so a page reads like a log and the newest events are never
cut off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Table, or_, select

from app.store.tables import AuditEventFile, AuditEventRow, AuditEventStudy

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
_AGO = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}

_events = cast(Table, AuditEventRow.__table__)
_studies = cast(Table, AuditEventStudy.__table__)
_files = cast(Table, AuditEventFile.__table__)


class BadAuditQuery(ValueError):
    """A query parameter that cannot be understood (the message names it)."""


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """A point in time: ISO 8601 (`2026-12-01`, `2026-12-01T08:00:00+01:00`; no zone: UTC) or an
    age (`30m`, `12h`, `7d`, `2w`: that long before now)."""
    value = text.strip()
    if match := _AGO.fullmatch(value):
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise BadAuditQuery(
            f"{text!r} is not a time: use ISO 8601 (2026-12-01, 2026-12-01T08:00:00Z) or an age (12h, 7d)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    study: str | None = None
    principal: str | None = None  # the principal's name or username
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise BadAuditQuery(f"limit must be between 1 and {MAX_LIMIT}, not {self.limit}")


def find_events(connection: Connection, query: AuditQuery) -> list[dict[str, Any]]:
    """The latest `query.limit` events matching `query`, oldest first, in their JSON form."""
    statement = select(_events)
    if query.study is not None:
        touched = select(_studies.c.event_id).where(_studies.c.study_instance_uid == query.study)
        statement = statement.where(_events.c.id.in_(touched))
    if query.principal is not None:
        statement = statement.where(
            or_(_events.c.principal == query.principal, _events.c.username == query.principal)
        )
    # Times are compared in UTC: SQLite stores them without their zone.
    if query.since is not None:
        statement = statement.where(_events.c.time >= query.since.astimezone(UTC))
    if query.until is not None:
        statement = statement.where(_events.c.time < query.until.astimezone(UTC))
    statement = statement.order_by(_events.c.time.desc(), _events.c.id.desc()).limit(query.limit)
    rows = connection.execute(statement).all()
    events = [_event_json(row) for row in reversed(rows)]
    _add_written_files(connection, events)
    return events


def _add_written_files(connection: Connection, events: list[dict[str, Any]]) -> None:
    """The files each export event wrote, under "files" (only events that wrote some get the key)."""
    exports = {event["id"]: event for event in events if event["action"] == "export"}
    if not exports:
        return
    query = (
        select(_files.c.event_id, _files.c.path, _files.c.sha256, _files.c.size)
        .where(_files.c.event_id.in_(list(exports)))
        .order_by(_files.c.event_id, _files.c.path)
    )
    for row in connection.execute(query):
        written = {"path": row.path, "sha256": row.sha256, "size": row.size}
        exports[row.event_id].setdefault("files", []).append(written)


def _event_json(row: Any) -> dict[str, Any]:
    # SQLite returns the UTC time without its zone; PostgreSQL in the session's zone.
    time = row.time.replace(tzinfo=UTC) if row.time.tzinfo is None else row.time.astimezone(UTC)
    return {
        "id": row.id,
        "time": time.isoformat(),
        "action": row.action,
        "principal_kind": row.principal_kind,
        "principal": row.principal,
        "username": row.username,
        "client": row.client,
        "method": row.method,
        "route": row.route,
        "status": row.status,
        "bytes_in": row.bytes_in,
        "bytes_out": row.bytes_out,
        "studies": orjson.loads(row.study_uids),
        "series": orjson.loads(row.series_uids),
        "instances": orjson.loads(row.instance_uids),
    }
