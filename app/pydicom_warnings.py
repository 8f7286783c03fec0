"""pydicom's warnings about the data it reads, as one log record per instance that names the instance.

Why: pydicom reports a value it had to guess at (an invalid UID, a wrong VR) both through
`warnings.warn` and through its `pydicom` logger. Printed raw, the text reaches stderr without the
instance it came from, and Python shows each distinct text only once per process. Inside
`reading_instance(...)` both kinds are collected and written, when the block ends, as one `warning`
record carrying the SOP Instance UID and the source (a STOW-RS part, an imported file, a blob). The
scope is a context variable, so instances read at the same time in several threads stay apart.
Outside any scope, a warning becomes one log record of its own (category and origin as fields).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TextIO

from app.log_setup import EXTRA_FIELDS

log = logging.getLogger(__name__)
PYDICOM_LOGGER = "pydicom"
_MAX_MESSAGES = 20  # a badly broken file can warn for every element: keep the record readable


@dataclass(slots=True)
class InstanceWarnings:
    """What pydicom said while one instance was read; `sop_instance_uid` may be learnt on the way."""

    source: str
    sop_instance_uid: str = ""
    messages: list[str] = field(default_factory=list)
    dropped: int = 0

    def add(self, message: str) -> None:
        if message in self.messages:  # pydicom logs and warns the same text
            return
        if len(self.messages) < _MAX_MESSAGES:
            self.messages.append(message)
        else:
            self.dropped += 1

    def write(self) -> None:
        if not self.messages:
            return
        uid = self.sop_instance_uid or "unknown"
        more = f" (and {self.dropped} more)" if self.dropped else ""
        log.warning(
            "pydicom warned while reading %s, SOP Instance UID %s: %s%s",
            self.source,
            uid,
            "; ".join(self.messages),
            more,
            extra={
                EXTRA_FIELDS: {
                    "sop_instance_uid": self.sop_instance_uid or None,
                    "source": self.source,
                    "warnings": self.messages,
                }
            },
        )


_current: ContextVar[InstanceWarnings | None] = ContextVar("fovea_instance_warnings", default=None)


@contextmanager
def reading_instance(source: str, sop_instance_uid: str = "") -> Iterator[InstanceWarnings]:
    """Collect pydicom's warnings while the block reads one instance; log them as one record at the end.

    Set `sop_instance_uid` on the yielded object once the block has read it. The block must not
    yield (a generator's steps may run in different contexts).
    """
    collected = InstanceWarnings(source, sop_instance_uid)
    token = _current.set(collected)
    try:
        yield collected
    finally:
        _current.reset(token)
        collected.write()


class _PydicomRecords(logging.Filter):
    """Takes the `pydicom` logger's records into the current instance's collection, when there is one."""

    def filter(self, record: logging.LogRecord) -> bool:
        collected = _current.get()
        if collected is None or record.levelno < logging.WARNING:
            return True
        collected.add(record.getMessage())
        return False


def _show_warning(  # the signature of warnings.showwarning
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,  # noqa: ARG001
    line: str | None = None,  # noqa: ARG001
) -> None:
    collected = _current.get()
    if collected is not None:
        collected.add(str(message))
        return
    log.warning(
        "%s: %s",
        category.__name__,
        message,
        extra={EXTRA_FIELDS: {"category": category.__name__, "origin": f"{filename}:{lineno}"}},
    )


def capture_warnings() -> None:
    """Route `warnings.warn` and pydicom's logger through here, in this process (idempotent)."""
    warnings.showwarning = _show_warning
    pydicom_logger = logging.getLogger(PYDICOM_LOGGER)
    if not any(isinstance(existing, _PydicomRecords) for existing in pydicom_logger.filters):
        pydicom_logger.addFilter(_PydicomRecords())
