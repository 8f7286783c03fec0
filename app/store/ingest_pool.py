"""Ingest in worker processes, so parsing and indexing use every core (ARCHITECTURE principle 5).

Why processes: parsing a data set and building its DICOM JSON is Python work under the GIL; threads
would leave all but one core idle. Each worker process keeps one `Ingestor` (its own engine and blob
store) per `IngestTarget`, built on first use. Workers are forked from a clean fork server that has
already imported the heavy modules, so starting one is cheap and never inherits a running server's
threads or locks.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from app.log_setup import LoggingConfiguration, configure_worker_logging, logging_configuration
from app.settings import (
    DEFAULT_BLOB_DELETION_GRACE_S,
    DEFAULT_ORPHAN_GRACE_S,
    DuplicatePolicy,
    PatientMismatchPolicy,
    RejectedRestorePolicy,
    Settings,
)
from app.store.blobs import BlobStore, S3Timeouts, open_blob_store
from app.store.db import DatabaseTimeouts, create_index_engine
from app.store.ingest import Ingestor, IngestResult, Outcome
from app.store.parse import Problem
from app.store.storage_policy import storage_policy
from app.worker_signals import ignore_interrupts

_PRELOAD = ["app.store.ingest", "app.store.db", "app.store.blobs", "boto3"]


@dataclass(frozen=True, slots=True)
class IngestTarget:
    """Where a worker stores instances: plain, picklable values taken from the settings."""

    database_url: str
    storage_url: str
    spool_directory: Path
    duplicate_policy: DuplicatePolicy
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    accepted_syntaxes: tuple[str, ...] = ()
    storage_syntax: str | None = None
    max_inflated_bytes: int | None = None
    codec_memory_bytes: int = 0
    blob_deletion_grace_s: float = DEFAULT_BLOB_DELETION_GRACE_S
    orphan_grace_s: float = DEFAULT_ORPHAN_GRACE_S
    patient_mismatch: PatientMismatchPolicy = PatientMismatchPolicy.REJECT
    rejected_restore: RejectedRestorePolicy = RejectedRestorePolicy.REFUSE
    delete_rejected_at_once: bool = False
    database_timeouts: DatabaseTimeouts = field(default_factory=DatabaseTimeouts)
    s3_timeouts: S3Timeouts = field(default_factory=S3Timeouts)

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestTarget:
        return cls(
            database_url=settings.resolved_database_url,
            storage_url=settings.resolved_storage_url,
            spool_directory=(settings.data_dir / "spool").resolve(),
            duplicate_policy=settings.duplicate_policy,
            s3_endpoint_url=settings.s3_endpoint_url,
            s3_region=settings.s3_region,
            s3_access_key_id=settings.s3_access_key_id,
            s3_secret_access_key=settings.s3_secret_access_key,
            accepted_syntaxes=settings.accepted_syntax_uids,
            storage_syntax=settings.storage_transfer_syntax,
            max_inflated_bytes=settings.resolved_max_inflated_bytes,
            codec_memory_bytes=settings.codec_memory_limit_mb * 1024 * 1024,
            blob_deletion_grace_s=settings.blob_deletion_grace_s,
            orphan_grace_s=settings.orphan_grace_s,
            patient_mismatch=settings.patient_mismatch,
            rejected_restore=settings.rejected_restore,
            delete_rejected_at_once=settings.rejected_delete_after_days == 0,
            database_timeouts=DatabaseTimeouts.from_settings(settings),
            s3_timeouts=S3Timeouts(
                settings.s3_connect_timeout_s, settings.s3_read_timeout_s, settings.s3_max_attempts
            ),
        )

    def open_blob_store(self) -> BlobStore:
        return open_blob_store(
            self.storage_url,
            spool_directory=self.spool_directory,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_region=self.s3_region,
            s3_access_key_id=self.s3_access_key_id,
            s3_secret_access_key=self.s3_secret_access_key,
            s3_timeouts=self.s3_timeouts,
        )


_ingestors: dict[IngestTarget, Ingestor] = {}  # per worker process, oldest first
_MAX_TARGETS = 8  # a server has one target; a shared pool (tests, tools) may see several


def _ingestor_for(target: IngestTarget) -> Ingestor:
    ingestor = _ingestors.get(target)
    if ingestor is None:
        if len(_ingestors) >= _MAX_TARGETS:
            oldest = next(iter(_ingestors))
            _ingestors.pop(oldest).engine.dispose()
        engine = create_index_engine(target.database_url, target.database_timeouts)
        policy = storage_policy(
            target.accepted_syntaxes, target.storage_syntax, decode_limit_bytes=target.codec_memory_bytes
        )
        ingestor = Ingestor(
            engine,
            target.open_blob_store(),
            target.duplicate_policy,
            policy,
            max_inflated_bytes=target.max_inflated_bytes,
            deletion_grace_s=target.blob_deletion_grace_s,
            orphan_grace_s=target.orphan_grace_s,
            patient_policy=target.patient_mismatch,
            rejected_restore=target.rejected_restore,
            delete_rejected_at_once=target.delete_rejected_at_once,
        )
        _ingestors[target] = ingestor
    return ingestor


def ingest_in_worker(
    target: IngestTarget, paths: Sequence[Path], expected_study_uid: str | None, batch_id: str | None
) -> list[IngestResult]:
    """Store spooled files (each consumed), in order, through this process's ingestor for `target`.

    Once the index or blob store turns out to be unavailable, the rest of the chunk is not tried: each
    would wait out the same timeouts, and the request is answered 503 as a whole anyway.
    """
    ingestor = _ingestor_for(target)
    results: list[IngestResult] = []
    for path in paths:
        if results and results[-1].problem is Problem.UNAVAILABLE:
            path.unlink(missing_ok=True)
            results.append(
                IngestResult(Outcome.FAILED, problem=Problem.UNAVAILABLE, message=results[-1].message)
            )
            continue
        results.append(ingestor.ingest(path, expected_study_uid=expected_study_uid, batch_id=batch_id))
    return results


def _warm_worker(target: IngestTarget) -> None:
    """Open this worker's ingestor (imports, engine, blob store) before the first instance arrives."""
    ingestor = _ingestor_for(target)
    with ingestor.engine.connect():
        pass
    time.sleep(0.05)  # hold the worker briefly so each warm-up job lands on a different one


def ingest_copy_in_worker(
    target: IngestTarget, source: Path, batch_id: str
) -> tuple[Path, int, IngestResult]:
    """Copy a file the user owns into the spool, then store the copy (the original is never moved)."""
    ingestor = _ingestor_for(target)
    handle, name = tempfile.mkstemp(prefix="import-", suffix=".dcm", dir=ingestor.blobs.spool_directory)
    os.close(handle)
    copy = Path(name)
    try:
        shutil.copyfile(source, copy)
    except OSError as exc:
        copy.unlink(missing_ok=True)
        failure = IngestResult(Outcome.FAILED, problem=Problem.NOT_DICOM, message=f"cannot read file: {exc}")
        return source, 0, failure
    size = copy.stat().st_size
    return source, size, ingestor.ingest(copy, batch_id=batch_id, source=str(source))


def start_worker_pool(workers: int) -> Executor:
    """A process pool whose workers come from a fork server with Fovea's ingest modules loaded."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return ProcessPoolExecutor(
        max_workers=max(1, workers),
        mp_context=context,
        initializer=start_ingest_worker,
        initargs=(logging_configuration(),),
    )


def start_ingest_worker(logging_settings: LoggingConfiguration | None) -> None:
    """Worker initializer: SIGINT is left to the server process; records and warnings are logged in the
    server's format."""
    ignore_interrupts()
    configure_worker_logging(logging_settings)


class IngestPool:
    """Stores spooled STOW-RS parts in worker processes; awaitable from the event loop.

    It starts its own worker processes, or uses a given executor (one pool shared by several apps),
    which it then leaves running on `close`.
    """

    def __init__(self, target: IngestTarget, workers: int, *, executor: Executor | None = None) -> None:
        self.target = target
        self._owns_executor = executor is None
        self._workers = max(1, workers)
        self._executor = executor or start_worker_pool(workers)

    async def warm_up(self) -> None:
        """Start every worker process and open its ingestor, so the first request is not slow."""
        loop = asyncio.get_running_loop()
        jobs = [loop.run_in_executor(self._executor, _warm_worker, self.target) for _ in range(self._workers)]
        await asyncio.gather(*jobs)

    async def ingest(
        self, paths: Sequence[Path], *, expected_study_uid: str | None, batch_id: str
    ) -> list[IngestResult]:
        """Store the spooled files (each consumed); the results come back in the same order.

        The files are dealt out in one contiguous chunk per worker: one hand-off per chunk rather than
        per file keeps the cost of crossing processes small next to the work itself.
        """
        if not paths:
            return []
        loop = asyncio.get_running_loop()
        size = -(-len(paths) // self._workers)  # ceiling division
        chunks = [paths[start : start + size] for start in range(0, len(paths), size)]
        jobs = [
            loop.run_in_executor(
                self._executor, ingest_in_worker, self.target, chunk, expected_study_uid, batch_id
            )
            for chunk in chunks
        ]
        return [result for chunk_results in await asyncio.gather(*jobs) for result in chunk_results]

    def close(self) -> None:
        if self._owns_executor:
            self._executor.shutdown(wait=True, cancel_futures=True)
