"""AuditTrail: the sinks a running server writes its audit events to, built from plain values.

Why one object: the middleware hands every event to the trail, whatever is configured; the trail
fans it out. A sink that fails to take an event is logged and never fails the request.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence

from sqlalchemy import Engine

from app.audit.database import DatabaseSink
from app.audit.events import AuditEvent
from app.audit.sinks import AuditSink, JsonLinesSink
from app.audit.syslog import SyslogSink

log = logging.getLogger(__name__)


class AuditTrail:
    def __init__(self, sinks: Sequence[AuditSink], *, in_database: bool) -> None:
        self.sinks = tuple(sinks)
        self.in_database = in_database  # whether `fovea audit` and GET /admin/audit can read it back

    def record(self, event: AuditEvent) -> None:
        for sink in self.sinks:
            try:
                sink.write(event)
            except Exception:
                log.exception("audit sink %s could not take event %s", type(sink).__name__, event.id)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event recorded so far has been written (False if that took too long)."""
        return all([sink.flush(timeout) for sink in self.sinks])

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def open_audit_trail(log_target: str, engine: Engine | None, syslog_url: str = "") -> AuditTrail:
    """JSON lines to `log_target` (a path, `-` for stdout, empty for none), into the index database
    through `engine` (None: not kept there), and as DICOM audit messages to `syslog_url` (empty: none)."""
    sinks: list[AuditSink] = []
    if log_target:
        sinks.append(JsonLinesSink(log_target))
    if engine is not None:
        sinks.append(DatabaseSink(engine))
    if syslog_url:
        sinks.append(SyslogSink(syslog_url, source_id=socket.gethostname()))
    return AuditTrail(sinks, in_database=engine is not None)
