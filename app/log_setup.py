"""Logging configured in one place: console lines for people, JSON lines for collectors, off the request path.

Why a queue: a log line written to stderr synchronously costs the request that emits it (about half of a
small request's time in uvicorn's own access log). Records are put on a queue and one writer thread formats
and writes them, in batches: the first record of a batch wakes the writer, which gathers what follows for
`BATCH_WINDOW_S` and writes it all with one write and flush, so a busy server wakes it about fifty times a
second rather than once per request, and an idle one never. Every Fovea process (server, uvicorn workers,
ingest workers) calls `configure_logging` with the same settings, so all lines share one format.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import multiprocessing.util
import sys
import threading
import time
from collections import deque
from enum import StrEnum
from typing import Any

import orjson

# The request a log record belongs to, for records emitted while a request is handled.
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fovea_request_id", default=None
)
REQUEST_FIELDS = "request"  # the `extra` key of the one line per request (see api/request_log.py)
EXTRA_FIELDS = "fields"  # an `extra` key whose dict becomes fields of the JSON line (any record)
BATCH_WINDOW_S = 0.02  # how long a line may wait to be written with the ones that follow it
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


class BatchWriter:
    """Formats queued records and writes them to a stream in batches, from its own thread."""

    def __init__(self, formatter: logging.Formatter, stream: Any) -> None:
        self._formatter = formatter
        self._stream = stream
        self._records: deque[logging.LogRecord] = deque()  # appends and pops are atomic
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="fovea-log-writer", daemon=True)
        self._thread.start()

    def put(self, record: logging.LogRecord) -> None:
        self._records.append(record)
        if not self._wake.is_set():  # only the first record of a batch pays for waking the writer
            self._wake.set()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if not self._stopping:
                time.sleep(BATCH_WINDOW_S)
            # Cleared before draining: a record put after this point either is drained below or
            # sets the event again for the next round.
            self._wake.clear()
            self._write_queued()
            if self._stopping and not self._records:
                return

    def _write_queued(self) -> None:
        lines = []
        while self._records:
            record = self._records.popleft()
            try:
                lines.append(self._formatter.format(record))
            except Exception:  # a record that cannot be formatted must not stop the others
                lines.append(f"unformattable log record from {record.name}: {record.msg!r}")
        if lines:
            try:
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()
            except (OSError, ValueError):  # stderr closed or gone: nothing else to tell it to
                pass


class _BatchWriterHandler(logging.Handler):
    """Hands the record as it is to the writer: it runs in this process, so nothing needs copying or
    formatting here (which would spend the request's time)."""

    def __init__(self, writer: BatchWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        self.writer.put(record)


_writer: BatchWriter | None = None


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
    global _writer, _configured
    _configured = (str(log_format), level)
    formatter: logging.Formatter = (
        JsonFormatter() if LogFormat(log_format) is LogFormat.JSON else ConsoleFormatter()
    )
    if _writer is not None:
        _writer.stop()
    _writer = BatchWriter(formatter, sys.stderr)
    enqueue = _BatchWriterHandler(_writer)
    enqueue.addFilter(_RequestIdFilter())  # in the emitting thread: the request's context is there
    atexit.register(_stop_writer)

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
        multiprocessing.util.Finalize(None, _stop_writer, exitpriority=0)


def _stop_writer() -> None:
    """Write what is queued before the process exits."""
    if _writer is not None:
        _writer.stop()
