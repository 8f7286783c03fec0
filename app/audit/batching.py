"""BatchingSink: a sink whose writing happens in its own thread, many events at a time.

Why: a request only puts its event on a queue (well under a microsecond); the thread takes everything
queued, up to a batch, and writes it with one commit or one `write`, so under load many requests share
the cost. After the first event it lingers up to LINGER_SECONDS for more, so that even sequential
requests share one commit instead of paying a database commit (and the GIL it holds) each.
`flush` waits for what was queued before it; `close` writes everything still queued.

A subclass says how to write a batch and whether a failure is worth retrying (an outage) or not. Events
that cannot be written yet wait in memory, retried with growing pauses, up to `max_backlog` (the oldest
are dropped beyond that, with an error logged). What is still queued when the process is killed is lost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from app.audit.events import AuditEvent

log = logging.getLogger(__name__)

BATCH_SIZE = 500
LINGER_SECONDS = 0.05  # how long a batch waits for company; `flush` and `close` never wait for it
MAX_BACKLOG = 100_000
_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class _Stop:
    """Queued by `close`: write what is queued, then end the thread."""


def _sorted_into(
    item: AuditEvent | threading.Event | _Stop, pending: list[AuditEvent], flushed: list[threading.Event]
) -> bool:
    """Put a queued item where it belongs; True when it asks the thread to stop."""
    if isinstance(item, AuditEvent):
        pending.append(item)
    elif isinstance(item, threading.Event):
        flushed.append(item)
    else:
        return True
    return False


class BatchingSink:
    """The queue and writer thread of a sink; subclasses implement `write_batch`."""

    description = "sink"  # for log messages: "2 audit events could not be written to the <description>"

    def __init__(self, *, max_backlog: int = MAX_BACKLOG) -> None:
        self._max_backlog = max_backlog
        self._queue: queue.SimpleQueue[AuditEvent | threading.Event | _Stop] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, name=f"fovea-audit-{type(self).__name__}", daemon=True
        )
        self._thread.start()

    def write_batch(self, batch: list[AuditEvent]) -> bool:
        """Write `batch` (at most BATCH_SIZE events); False to keep it and retry later."""
        raise NotImplementedError

    def release(self) -> None:
        """Release what the sink holds open, once its thread has ended."""

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
            log.error("audit events were still being written to the %s at shutdown", self.description)
            return
        self.release()

    def _run(self) -> None:
        pending: list[AuditEvent] = []
        failures = 0
        while True:
            wait = _RETRY_SECONDS[min(failures, len(_RETRY_SECONDS)) - 1] if failures else None
            stop, flushed = self._take(pending, wait)
            if self._write_pending(pending):
                failures = 0
            else:
                failures += 1
                self._bound(pending)
            for done in flushed:
                done.set()
            if stop:
                if pending:
                    log.error(
                        "%d audit events could not be written to the %s", len(pending), self.description
                    )
                return

    def _take(self, pending: list[AuditEvent], wait: float | None) -> tuple[bool, list[threading.Event]]:
        """Move queued events into `pending` (waiting for the first up to `wait`; None: for ever)."""
        stop, flushed = False, list[threading.Event]()
        try:
            item = self._queue.get(timeout=wait)
        except queue.Empty:
            return stop, flushed
        linger_until = time.monotonic() + LINGER_SECONDS
        while True:
            stop = _sorted_into(item, pending, flushed) or stop
            if len(pending) >= BATCH_SIZE or flushed or stop:
                break
            try:
                item = self._queue.get(timeout=max(0.0, linger_until - time.monotonic()))
            except queue.Empty:
                break
        if flushed or stop:  # take what else is queued now, without waiting
            while len(pending) < BATCH_SIZE:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                stop = _sorted_into(item, pending, flushed) or stop
        return stop, flushed

    def _write_pending(self, pending: list[AuditEvent]) -> bool:
        """Write `pending` batch by batch, emptying it; False (keeping the rest) when a batch must wait."""
        while pending:
            batch = pending[:BATCH_SIZE]
            try:
                written = self.write_batch(batch)
            except Exception:  # a defect, not an outage: retrying would fail the same way
                log.exception("%d audit events lost: the %s failed", len(batch), self.description)
                written = True
            if not written:
                return False
            del pending[: len(batch)]
        return True

    def _bound(self, pending: list[AuditEvent]) -> None:
        if len(pending) > self._max_backlog:
            dropped = len(pending) - self._max_backlog
            del pending[:dropped]
            log.error("%d oldest audit events dropped: the %s is unavailable", dropped, self.description)
