"""Where audit records go: the AuditSink protocol, and the JSON lines sink (a file or stdout).

Why no logging handler: the request's whole share is one queue put; the sink's thread formats the
lines and writes each batch with one `write` to a file opened for appending, so several server
processes can share one file without their lines interleaving, and a slow disk or a blocked stdout
pipe never holds up a response (app/audit/batching.py).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Protocol

from app.audit.batching import MAX_BACKLOG, BatchingSink
from app.audit.events import AuditEvent

log = logging.getLogger(__name__)
STDOUT = "-"


class AuditSink(Protocol):
    def write(self, event: AuditEvent) -> None:
        """Take the event; must not block on I/O (it runs on the request's path)."""
        ...

    def flush(self, timeout: float) -> bool:
        """Wait until every event written before has been handed on; False on timeout."""
        ...

    def close(self) -> None:
        """Hand on everything written, then release the sink."""
        ...


def open_append_only(path: Path) -> int:
    """A descriptor appending to `path`, a new file readable by its owner only (it names patients' UIDs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


class JsonLinesSink(BatchingSink):
    """One JSON object per line, per event, appended to a file, or written to stdout (`-`)."""

    def __init__(self, target: str, *, max_backlog: int = MAX_BACKLOG) -> None:
        self._fd = None if target == STDOUT else open_append_only(Path(target))
        self.description = "audit log " + ("stdout" if self._fd is None else target)
        super().__init__(max_backlog=max_backlog)

    def write_batch(self, batch: list[AuditEvent]) -> bool:
        text = "".join(event.json_line() + "\n" for event in batch)
        try:
            if self._fd is None:
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                data = memoryview(text.encode())
                while data:  # one write unless the disk fills up
                    data = data[os.write(self._fd, data) :]
        except OSError as exc:
            log.warning("audit events not written yet to the %s: %s", self.description, exc)
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
