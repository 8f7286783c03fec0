"""The background fixity check: a server thread that re-reads, at a limited byte rate, the stored files
whose last check is older than FOVEA_VERIFY_INTERVAL_S, flagging what is corrupt or missing.

Why one process at a time: every server process of a deployment runs this thread. A lock (a
PostgreSQL advisory lock, a `flock` beside a SQLite database) lets one of them check a batch while
the others wait their turn, so the rate limit holds for the deployment and no file is read twice.
Each batch is recorded before the lock is given back, so the next holder starts where it ended.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from app.metrics import FIXITY_BYTES, FIXITY_CHECKS
from app.store.infra.blobs import BlobStore
from app.store.infra.throttle import ByteRateLimit
from app.store.upkeep.verification import (
    Finding,
    Status,
    Tally,
    check_instance,
    due_for_verification,
    record_findings,
)

log = logging.getLogger(__name__)
BATCH = 50  # instances per turn
IDLE_S = 60.0  # the wait when nothing is due, another process holds the turn, or the store failed
_ADVISORY_LOCK_ID = 0x666F766561766679  # "foveavfy": this job's PostgreSQL advisory lock


@contextmanager
def verifier_turn(engine: Engine) -> Iterator[bool]:
    """True while this process holds the deployment's one fixity-check turn; False: another does."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            held = bool(connection.execute(select(func.pg_try_advisory_lock(_ADVISORY_LOCK_ID))).scalar())
            connection.commit()  # the lock belongs to the session, not to a transaction left open
            try:
                yield held
            finally:
                if held:
                    connection.execute(select(func.pg_advisory_unlock(_ADVISORY_LOCK_ID)))
                    connection.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield True
        return
    fd = os.open(f"{database}.verify-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            held = False
        yield held
    finally:
        os.close(fd)  # releases the lock


class FixityVerifier:
    """A server process's thread: batch after batch of due instances, at `bytes_per_s` at most."""

    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        *,
        interval_s: float,
        bytes_per_s: float,
        idle_s: float = IDLE_S,
    ) -> None:
        self._engine, self._blobs = engine, blobs
        self._interval_s, self._bytes_per_s, self._idle_s = interval_s, bytes_per_s, idle_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fovea-verify", daemon=True)
        self.tally = Tally()  # what this process found since it started

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                more = self._one_batch()
            except (OSError, SQLAlchemyError) as exc:
                log.warning("background fixity check failed (%s); it tries again later", exc)
                more = False
            if not more:
                self._stop.wait(self._idle_s)

    def _one_batch(self) -> bool:
        """Check one batch if this process has the turn; True when more may be due at once."""
        with verifier_turn(self._engine) as mine:
            if not mine:
                return False
            verified_before = datetime.now(UTC) - timedelta(seconds=self._interval_s)
            due = due_for_verification(self._engine, verified_before, BATCH)
            if not due:
                return False
            limit = ByteRateLimit(self._bytes_per_s, stop=self._stop)

            def read(count: int) -> None:
                FIXITY_BYTES.inc(count)
                limit.consumed(count)

            findings: list[Finding] = []
            outage = False
            for candidate in due:
                if self._stop.is_set():
                    break
                finding = check_instance(self._blobs, candidate, read)
                findings.append(finding)
                if finding.status is Status.UNREADABLE:  # the store is failing: wait, do not hammer it
                    log.warning("background fixity check paused: %s", finding.reason)
                    outage = True
                    break
            for finding in record_findings(self._engine, findings):
                self.tally.add(finding)
                FIXITY_CHECKS.labels(finding.status.value).inc()
                if finding.status in (Status.CORRUPT, Status.MISSING):
                    log.error("fixity check: %s", orjson.dumps(finding.as_dict()).decode())
            return not outage and len(due) == BATCH
