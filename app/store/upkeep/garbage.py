"""Garbage collection: blobs nothing refers to, spool files no process owns, and due deferred deletions.

Why it is safe to run while servers store and serve:
- an **orphan** is a blob that no instance row refers to, that is not waiting for its deferred deletion
  (`deferred_deletion.py`: readers may still hold it), and that was published more than `orphan_grace`
  ago. A blob being stored right now is published before its index row commits; ingest gives up on an
  instance whose indexing has not committed within half the grace period (`Ingestor`), so a blob old
  enough to be collected can no longer become referenced. Orphans come from crashes between publishing
  and indexing, and from deletions that failed while the blob store was unreachable.
- the **spool** is cleaned by `clean_spool`: only folders of processes that are gone, and loose files
  older than the grace period.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.store.infra.blobs import BlobStore, StoredBlob
from app.store.infra.spool import Reclaimed, clean_spool
from app.store.policies import DEFAULT_BLOB_DELETION_GRACE_S
from app.store.upkeep.deferred_deletion import delete_due_blobs, pending_keys, referenced_keys
from app.store.upkeep.rejected_retention import purge_rejected

log = logging.getLogger(__name__)
_BATCH = 500


@dataclass(frozen=True, slots=True)
class GcReport:
    """What one collection removed (a dry run: would remove), by kind."""

    deferred: Reclaimed = field(default_factory=Reclaimed)
    orphans: Reclaimed = field(default_factory=Reclaimed)
    spool: Reclaimed = field(default_factory=Reclaimed)
    dry_run: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def lines(self) -> list[str]:
        """One human line per kind: `orphan blobs: 3 removed, 1,234 bytes reclaimed`."""
        verb = "would be removed" if self.dry_run else "removed"
        rows = (
            ("due deferred deletions", self.deferred),
            ("orphan blobs", self.orphans),
            ("spool files", self.spool),
        )
        return [f"{name}: {item.count} {verb}, {item.bytes:,} bytes" for name, item in rows]


def find_orphans(engine: Engine, blobs: BlobStore, *, older_than: datetime) -> Iterator[StoredBlob]:
    """The blobs published before `older_than` that no instance refers to and none waits for
    (what `collect_orphans` removes and `fovea verify` reports)."""
    candidates = (blob for blob in blobs.iter_blobs() if blob.published < older_than)
    for batch in _batches(candidates):
        keys = [blob.key for blob in batch]
        with engine.connect() as connection:
            kept = referenced_keys(connection, keys) | pending_keys(connection, keys)
        yield from (blob for blob in batch if blob.key not in kept)


def collect_orphans(
    engine: Engine, blobs: BlobStore, *, older_than: datetime, dry_run: bool = False
) -> Reclaimed:
    """Delete the blobs published before `older_than` that no instance refers to and none waits for."""
    reclaimed = Reclaimed()
    for blob in find_orphans(engine, blobs, older_than=older_than):
        if not dry_run:
            blobs.delete(blob.key)
        log.info("orphan blob %s (%d bytes) %s", blob.key, blob.size, "found" if dry_run else "removed")
        reclaimed += Reclaimed(1, blob.size)
    return reclaimed


def _batches(blobs: Iterator[StoredBlob]) -> Iterator[list[StoredBlob]]:
    while batch := list(islice(blobs, _BATCH)):
        yield batch


def collect_garbage(
    engine: Engine,
    blobs: BlobStore,
    *,
    orphan_grace_s: float,
    dry_run: bool = False,
    now: datetime | None = None,
) -> GcReport:
    """Due deferred deletions, then orphans, then the spool (what `fovea gc` and start-up run)."""
    now = now or datetime.now(UTC)
    deferred = delete_due_blobs(engine, blobs, now=now, dry_run=dry_run)
    older_than = now - timedelta(seconds=orphan_grace_s)
    orphans = collect_orphans(engine, blobs, older_than=older_than, dry_run=dry_run)
    spool = clean_spool(blobs.spool_root, older_than_s=orphan_grace_s, dry_run=dry_run)
    return GcReport(deferred, orphans, spool, dry_run)


class BlobCollector:
    """A server process's background thread: a full collection at start-up, then due deletions and
    the spool (cheap: one folder listing) every `interval_s` seconds. Failures (an unreachable
    database or store) are logged and tried again next time: nothing is lost by waiting."""

    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        *,
        orphan_grace_s: float,
        interval_s: float,
        rejected_after_days: float | None = None,
        blob_deletion_grace_s: float = DEFAULT_BLOB_DELETION_GRACE_S,
    ) -> None:
        self._engine, self._blobs = engine, blobs
        self._orphan_grace_s, self._interval_s = orphan_grace_s, interval_s
        # FOVEA_REJECTED_DELETE_AFTER_DAYS: rejected instances past it are deleted on each pass too.
        self._rejected_after_days = rejected_after_days
        self._blob_deletion_grace_s = blob_deletion_grace_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fovea-blob-gc", daemon=True)
        self.runs = 0  # completed passes, for tests

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        self._attempt(self._collect_fully)
        while not self._stop.wait(self._interval_s):
            self._attempt(self._collect_often)

    def _collect_fully(self) -> tuple[int, GcReport]:
        purged = self._purge_rejected()
        return purged, collect_garbage(self._engine, self._blobs, orphan_grace_s=self._orphan_grace_s)

    def _collect_often(self) -> tuple[int, Reclaimed, Reclaimed]:
        purged = self._purge_rejected()
        deferred = delete_due_blobs(self._engine, self._blobs)
        return purged, deferred, clean_spool(self._blobs.spool_root, older_than_s=self._orphan_grace_s)

    def _purge_rejected(self) -> int:
        """Rejected instances past FOVEA_REJECTED_DELETE_AFTER_DAYS (unset: never; 0: ingest does it)."""
        if not self._rejected_after_days:
            return 0
        return purge_rejected(
            self._engine, after_days=self._rejected_after_days, blob_grace_s=self._blob_deletion_grace_s
        )

    def _attempt(self, collect: Callable[[], object]) -> None:
        try:
            result = collect()
        except (OSError, SQLAlchemyError) as exc:
            log.warning("blob garbage collection failed (%s); it runs again later", exc)
            return
        self.runs += 1
        log.debug("blob garbage collection: %s", result)
