"""The audit trail in the index database: events inserted in batches by the sink's own thread.

Why batches off the request path: an insert (and on SQLite the turn at the single writer) must never
hold up a response, and under load many requests share one commit (app/audit/batching.py).

What can be lost: on a clean shutdown `close` writes everything queued. If the process is killed, the
events still queued (those of the last moments, or of an index outage) are lost from the database;
the JSON lines sink, when configured, has them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import orjson
from sqlalchemy import Connection, Engine, Table, insert
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from app.audit.batching import MAX_BACKLOG, BatchingSink
from app.audit.events import AuditEvent
from app.store.infra.db import write_serializer_for
from app.store.tables import AuditEventFile, AuditEventRow, AuditEventStudy

log = logging.getLogger(__name__)

_events = cast(Table, AuditEventRow.__table__)
_studies = cast(Table, AuditEventStudy.__table__)
_INSERT_EVENTS = insert(_events)
_INSERT_STUDIES = insert(_studies)
_INSERT_FILES = insert(cast(Table, AuditEventFile.__table__))


def event_values(event: AuditEvent) -> dict[str, object]:
    """The audit_events row of `event`."""
    return {
        "id": event.id,
        "time": event.time,
        "action": event.action.value,
        "principal_kind": event.principal_kind,
        "principal": event.principal,
        "username": event.username,
        "client": event.client,
        "method": event.method,
        "route": event.route,
        "status": event.status,
        "bytes_in": event.bytes_in,
        "bytes_out": event.bytes_out,
        "study_uids": orjson.dumps(event.studies).decode(),
        "series_uids": orjson.dumps(event.series).decode(),
        "instance_uids": orjson.dumps(event.instances).decode(),
    }


def insert_events(connection: Connection, events: Sequence[AuditEvent]) -> None:
    """Insert `events` (and the studies each touched) in the caller's transaction."""
    studies = [{"event_id": event.id, "study_instance_uid": uid} for event in events for uid in event.studies]
    connection.execute(_INSERT_EVENTS, [event_values(event) for event in events])
    if studies:
        connection.execute(_INSERT_STUDIES, studies)
    files = [
        {"event_id": event.id, "path": written.path, "sha256": written.sha256, "size": written.size}
        for event in events
        for written in event.files
    ]
    if files:
        connection.execute(_INSERT_FILES, files)


class DatabaseSink(BatchingSink):
    """Writes events to `audit_events` (see the module docstring)."""

    description = "database"

    def __init__(self, engine: Engine, *, max_backlog: int = MAX_BACKLOG) -> None:
        self._engine = engine
        self._serialized_writes = write_serializer_for(engine)  # SQLite: one writer at a time
        super().__init__(max_backlog=max_backlog)

    def _insert(self, events: Sequence[AuditEvent]) -> None:
        with self._serialized_writes(), self._engine.begin() as connection:
            insert_events(connection, events)

    def write_batch(self, batch: list[AuditEvent]) -> bool:
        try:
            self._insert(batch)
        except DBAPIError as exc:
            if isinstance(exc, OperationalError) or exc.connection_invalidated:
                log.warning("audit events not written yet, the index is unavailable: %s", exc.orig)
                return False
            self._write_one_by_one(batch)
        except SQLAlchemyError:
            self._write_one_by_one(batch)
        return True

    def _write_one_by_one(self, batch: list[AuditEvent]) -> None:
        """A batch the index refused: keep the events it accepts, log the others (never retried)."""
        for event in batch:
            try:
                self._insert([event])
            except SQLAlchemyError:
                log.exception("audit event %s refused by the index: %s", event.id, event.json_line())
