"""Where audit records go: the AuditSink protocol, and the JSON lines sink (a file or stdout).

Why a logging queue for JSON lines: the request only formats its line and puts it on a queue; a
listener thread does the writing, so a slow disk or a blocked stdout pipe never holds up a response.
Each line is written with one `write` to a file opened for appending, so several server processes can
share one file without interleaving lines.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from logging.handlers import QueueHandler, QueueListener
from pathlib import Path
from typing import Protocol

from app.audit.events import AuditEvent

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


def _append_only_file(path: Path) -> logging.Handler:
    """A handler appending to `path`, created readable by its owner only (the trail names patients' UIDs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    return logging.FileHandler(path, mode="a", encoding="utf-8")


class JsonLinesSink:
    """One JSON object per line, per event, to a file path or to stdout (`-`)."""

    def __init__(self, target: str) -> None:
        handler = logging.StreamHandler(sys.stdout) if target == STDOUT else _append_only_file(Path(target))
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._handler = handler
        self._lock = threading.Lock()  # one flush or close at a time
        self._queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._listener = QueueListener(self._queue, handler)
        # A logger outside logging's registry: nothing configured elsewhere adds to or takes from it.
        self._logger = logging.Logger("fovea.audit", logging.INFO)
        self._logger.propagate = False
        self._logger.addHandler(QueueHandler(self._queue))
        self._listener.start()

    def write(self, event: AuditEvent) -> None:
        self._logger.info(event.json_line())

    def flush(self, timeout: float) -> bool:
        # The listener has no flush; stopping drains the queue, and starting again resumes.
        with self._lock:
            self._listener.stop()
            self._handler.flush()
            self._listener.start()
        return True

    def close(self) -> None:
        with self._lock:
            self._listener.stop()
            self._handler.close()
