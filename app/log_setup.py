"""Logging configured in one place: console lines for people, JSON lines for collectors, off the request path.

Why a queue: a log line written to stderr synchronously costs the request that emits it (about half of a
small request's time in uvicorn's own access log). Records are put on a queue and one listener thread
formats and writes them. Every Fovea process (server, uvicorn workers, ingest workers) calls
`configure_logging` with the same settings, so all lines share one format.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import logging.handlers
import multiprocessing.util
import queue
import sys
import time
from enum import StrEnum
from typing import Any

import orjson

# The request a log record belongs to, for records emitted while a request is handled.
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fovea_request_id", default=None
)
REQUEST_FIELDS = "request"  # the `extra` key of the one line per request (see api/request_log.py)
EXTRA_FIELDS = "fields"  # an `extra` key whose dict becomes fields of the JSON line (any record)
_listener: logging.handlers.QueueListener | None = None
# What `configure_logging` was last called with in this process: worker pools pass it to their workers.
LoggingConfiguration = tuple[str, str]
_configured: LoggingConfiguration | None = None


class LogFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get()
        return True


class _InProcessQueueHandler(logging.handlers.QueueHandler):
    """Enqueues the record as it is: the listener runs in this process, so nothing needs the stdlib's
    copy-and-preformat (which would spend the request's time formatting)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, the request's fields, and the
    exception text (tracebacks stay inside the line)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for key in (REQUEST_FIELDS, EXTRA_FIELDS):
            fields = getattr(record, key, None)
            if isinstance(fields, dict):
                entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    """`HH:MM:SS level logger: message [request id]`, a request as `GET /path 200 1.2 ms 345 B`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s%(request_suffix)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.request_suffix = f" [{request_id}]" if request_id else ""
        return super().format(record)


def _utc(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def configure_logging(log_format: LogFormat | str = LogFormat.CONSOLE, level: str = "info") -> None:
    """Route every logger of this process through one queue to stderr in `log_format`."""
    global _listener, _configured
    _configured = (str(log_format), level)
    formatter: logging.Formatter = (
        JsonFormatter() if LogFormat(log_format) is LogFormat.JSON else ConsoleFormatter()
    )
    output = logging.StreamHandler(sys.stderr)
    output.setFormatter(formatter)
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    enqueue = _InProcessQueueHandler(records)
    enqueue.addFilter(_RequestIdFilter())
    if _listener is not None:
        _listener.stop()
    _listener = logging.handlers.QueueListener(records, output, respect_handler_level=False)
    _listener.start()
    atexit.register(_stop_listener)

    # Neither format shows thread or process names: skip looking them up for every record.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(enqueue)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # pydicom's warnings (a value it had to guess at) become log records, not raw stderr text, and
    # name the instance they are about (app/pydicom_warnings.py).
    from app.pydicom_warnings import capture_warnings

    capture_warnings()


def logging_configuration() -> LoggingConfiguration | None:
    """This process's logging settings, for a worker process to apply (None: never configured)."""
    return _configured


def configure_worker_logging(configuration: LoggingConfiguration | None) -> None:
    """In a pool's worker process: log as the process that started the pool does (when it was set)."""
    if configuration is not None:
        configure_logging(*configuration)
        # a pool worker ends through multiprocessing's exit, which skips atexit but runs these
        multiprocessing.util.Finalize(None, _stop_listener, exitpriority=0)


def _stop_listener() -> None:
    """Flush what is queued before the process exits."""
    if _listener is not None:
        _listener.stop()
