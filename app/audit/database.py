"""The audit trail in the index database: events queued by requests, inserted in batches by one thread.

Why a thread: an insert (and on SQLite the turn at the single writer) must never hold up a response.
Requests put events on a queue; the writer thread takes everything queued, up to a batch, and inserts
it in one transaction, so under load many requests share one commit.

What can be lost: on a clean shutdown `close` writes everything queued. If the process is killed, the
events still queued (those of the last moments, or of an index outage) are lost from the database;
the JSON lines sink, when configured, has them. During an outage events wait in memory (up to
`max_backlog`, the oldest dropped beyond that, with an error logged) and are retried.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import cast

import orjson
from sqlalchemy import Engine, Table, insert
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from app.audit.events import AuditEvent
from app.store.db import write_serializer_for
from app.store.index import AuditEventRow, AuditEventStudy

log = logging.getLogger(__name__)

_events = cast(Table, AuditEventRow.__table__)
_studies = cast(Table, AuditEventStudy.__table__)
_INSERT_EVENTS = insert(_events)
_INSERT_STUDIES = insert(_studies)
BATCH_SIZE = 500
MAX_BACKLOG = 100_000
_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class _Stop:
    """Queued by `close`: write what is queued, then end the thread."""


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


def insert_events(engine: Engine, events: Sequence[AuditEvent]) -> None:
    """Insert `events` (and the studies each touched) in one transaction."""
    studies = [{"event_id": event.id, "study_instance_uid": uid} for event in events for uid in event.studies]
    with write_serializer_for(engine)(), engine.begin() as connection:
        connection.execute(_INSERT_EVENTS, [event_values(event) for event in events])
        if studies:
            connection.execute(_INSERT_STUDIES, studies)


class DatabaseSink:
    """Writes events to `audit_events` from a background thread (see the module docstring)."""

    def __init__(self, engine: Engine, *, max_backlog: int = MAX_BACKLOG) -> None:
        self._engine = engine
        self._max_backlog = max_backlog
        self._queue: queue.SimpleQueue[AuditEvent | threading.Event | _Stop] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="fovea-audit-db", daemon=True)
        self._thread.start()

    def write(self, event: AuditEvent) -> None:
        self._queue.put(event)

    def flush(self, timeout: float) -> bool:
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        self._queue.put(_Stop())
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("audit events were still being written to the database at shutdown")

    def _run(self) -> None:
        pending: list[AuditEvent] = []
        failures = 0
        while True:
            wait = _RETRY_SECONDS[min(failures, len(_RETRY_SECONDS)) - 1] if failures else None
            stop, flushed = self._take(pending, wait)
            if pending and self._write(pending):
                failures = 0
            elif pending:
                failures += 1
                self._bound(pending)
            for done in flushed:
                done.set()
            if stop:
                if pending:
                    log.error("%d audit events could not be written to the database", len(pending))
                return

    def _take(self, pending: list[AuditEvent], wait: float | None) -> tuple[bool, list[threading.Event]]:
        """Move queued events into `pending` (waiting for the first up to `wait`; None: for ever)."""
        stop, flushed = False, []
        try:
            item = self._queue.get(timeout=wait)
            while True:
                if isinstance(item, AuditEvent):
                    pending.append(item)
                elif isinstance(item, threading.Event):
                    flushed.append(item)
                else:
                    stop = True
                if len(pending) >= BATCH_SIZE and not flushed and not stop:
                    break
                item = self._queue.get_nowait()
        except queue.Empty:
            pass
        return stop, flushed

    def _write(self, pending: list[AuditEvent]) -> bool:
        """Insert `pending` in batches, emptying it; False (leaving the rest) when the index is down."""
        while pending:
            batch = pending[:BATCH_SIZE]
            try:
                insert_events(self._engine, batch)
            except (OperationalError, DBAPIError) as exc:
                if isinstance(exc, OperationalError) or exc.connection_invalidated:
                    log.warning("audit events not written yet, the index is unavailable: %s", exc.orig)
                    return False
                self._write_one_by_one(batch)
            except SQLAlchemyError:
                self._write_one_by_one(batch)
            del pending[: len(batch)]
        return True

    def _write_one_by_one(self, batch: list[AuditEvent]) -> None:
        """A batch the index refused: keep the events it accepts, log the others (never retried)."""
        for event in batch:
            try:
                insert_events(self._engine, [event])
            except SQLAlchemyError:
                log.exception("audit event %s refused by the index: %s", event.id, event.json_line())

    def _bound(self, pending: list[AuditEvent]) -> None:
        if len(pending) > self._max_backlog:
            dropped = len(pending) - self._max_backlog
            del pending[:dropped]
            log.error("index unavailable: %d oldest audit events dropped from the database backlog", dropped)
