"""Ingest in worker processes, so parsing and indexing use every core (docs/architecture.md, "Principles").

Why processes: parsing a data set and building its DICOM JSON is Python work under the GIL; threads
would leave all but one core idle. Each worker process keeps one `Ingestor` (its own engine and blob
store) per `IngestTarget`, built on first use. Workers are forked from a clean fork server that has
already imported the heavy modules, so starting one is cheap and never inherits a running server's
threads or locks.

The worker processes start on the first instance that needs them, not with the server: an idle
server is one process (the fork server, the resource tracker and the workers cost about 300 MB RSS).
Small instances (at most `inline_bytes`, FOVEA_INGEST_INLINE_KB) are parsed and stored in the
server's threads instead, through the same `ingest_in_worker`: the process hand-off costs more than
their parse, and an installation that only receives small instances never needs the workers.
docs/deployment.md "Memory" has the trade-off.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from app.log_setup import LoggingConfiguration, configure_worker_logging, logging_configuration
from app.store.infra.blobs import BlobStore, S3Timeouts, open_blob_store
from app.store.infra.db import DatabaseTimeouts, create_index_engine
from app.store.policies import (
    DEFAULT_BLOB_DELETION_GRACE_S,
    DEFAULT_ORPHAN_GRACE_S,
    DuplicatePolicy,
    PatientMismatchPolicy,
    RejectedRestorePolicy,
)
from app.store.write.ingest import Ingestor, IngestResult, Outcome
from app.store.write.parse import Problem
from app.store.write.storage_policy import storage_policy
from app.worker_signals import ignore_interrupts

_PRELOAD = ["app.store.write.ingest", "app.store.infra.db", "app.store.infra.blobs", "boto3"]


@dataclass(frozen=True, slots=True)
class IngestTarget:
    """Where a worker stores instances: plain, picklable values (`Settings.ingest_target()` builds one)."""

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


_ingestors: dict[IngestTarget, Ingestor] = {}  # per process, oldest first
_ingestors_lock = threading.Lock()  # the server process ingests small instances in several threads
_MAX_TARGETS = 8  # a server has one target; a shared pool (tests, tools) may see several


def _ingestor_for(target: IngestTarget) -> Ingestor:
    with _ingestors_lock:
        return _ingestors.get(target) or _open_ingestor(target)


def _open_ingestor(target: IngestTarget) -> Ingestor:
    """A new ingestor for `target`, the oldest dropped beyond _MAX_TARGETS (under _ingestors_lock)."""
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
    target: IngestTarget,
    paths: Sequence[Path],
    expected_study_uid: str | None,
    batch_id: str | None,
    digests: Mapping[Path, str] | None = None,
) -> list[IngestResult]:
    """Store spooled files (each consumed), in order, through this process's ingestor for `target`.

    Their index writes share transactions (`Ingestor.ingest_many`); once the index or blob store turns
    out to be unavailable, the rest of the chunk is not tried. `digests`: SHA-256 already taken.
    """
    ingestor = _ingestor_for(target)
    return ingestor.ingest_many(
        paths, expected_study_uid=expected_study_uid, batch_id=batch_id, digests=digests
    )


def close_ingestor(target: IngestTarget) -> None:
    """Close this process's connections for `target` (a later use would open new ones)."""
    with _ingestors_lock:
        ingestor = _ingestors.pop(target, None)
    if ingestor is not None:
        ingestor.engine.dispose()


def _open_inline_ingestor(target: IngestTarget) -> None:
    """Open the server process's own ingestor, for the instances it stores inline."""
    with _ingestor_for(target).engine.connect():
        pass


def ingest_copy_in_worker(
    target: IngestTarget, source: Path, batch_id: str
) -> tuple[Path, int, IngestResult]:
    """Copy a file the user owns into the spool, then store the copy (the original is never moved).

    `fovea import` runs it in its worker processes or, for small files, in its own threads.
    """
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
    """Stores spooled STOW-RS parts, in worker processes or inline; awaitable from the event loop.

    It starts its own worker processes on first use, or uses a given executor (one pool shared by
    several apps), which it then leaves running on `close`. A file of at most `inline_bytes` is
    stored in a thread of this process instead (0: never), unless the target converts pixels at
    ingest (a storage transfer syntax: codec work, which belongs in the worker processes).
    """

    def __init__(
        self,
        target: IngestTarget,
        workers: int,
        *,
        executor: Executor | None = None,
        inline_bytes: int = 0,
    ) -> None:
        self.target = target
        self._owns_executor = executor is None
        self._workers = max(1, workers)
        self._executor = executor
        self._lock = threading.Lock()
        self._closed = False
        self.inline_bytes = inline_bytes if target.storage_syntax is None else 0

    @property
    def processes_started(self) -> bool:
        """Whether worker processes exist (or were given): False until an instance needed them."""
        return self._executor is not None

    def _pool(self) -> Executor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the ingest pool is closed")
            if self._executor is None:
                self._executor = start_worker_pool(self._workers)
            return self._executor

    def _forget_broken(self, broken: Executor) -> None:
        """A worker process died (the memory killer, a crash in native code): the next use starts a
        fresh pool rather than failing for the rest of the server's life."""
        with self._lock:
            if self._owns_executor and self._executor is broken:
                self._executor = None
        if self._owns_executor:
            broken.shutdown(wait=False, cancel_futures=True)

    async def warm_up(self) -> None:
        """Open this process's ingestor (engine, blob store), so the first small instance is not slow.

        Worker processes are not started here: that waits for the first instance too large to be
        stored inline (or for any instance, when nothing is stored inline).
        """
        if self.inline_bytes > 0:
            await asyncio.get_running_loop().run_in_executor(None, _open_inline_ingestor, self.target)

    async def ingest(
        self,
        paths: Sequence[Path],
        *,
        expected_study_uid: str | None,
        batch_id: str,
        digests: Mapping[Path, str] | None = None,
    ) -> list[IngestResult]:
        """Store the spooled files (each consumed); the results come back in the same order.

        Files are dealt out in one contiguous chunk per worker: one hand-off per chunk rather than
        per file keeps the cost of crossing processes small next to the work itself. Small files go to
        threads of this process the same way (their blob fsync and index commit overlap; their parse
        shares the GIL), the others to the worker processes. `digests`: the SHA-256 of some of the
        files, taken while they were spooled.
        """
        if not paths:
            return []
        inline = [path for path in paths if self._fits_inline(path)]
        small = set(inline)
        pooled = [path for path in paths if path not in small]
        loop = asyncio.get_running_loop()
        jobs: list[Awaitable[list[IngestResult]]] = [
            loop.run_in_executor(
                None, ingest_in_worker, self.target, chunk, expected_study_uid, batch_id, digests
            )
            for chunk in self._chunks(inline)
        ]
        if pooled:
            jobs.append(self._ingest_in_processes(pooled, expected_study_uid, batch_id, digests))
        done = await asyncio.gather(*jobs)
        by_path = dict(zip(inline + pooled, [result for results in done for result in results], strict=True))
        return [by_path[path] for path in paths]

    def _chunks(self, paths: Sequence[Path]) -> list[Sequence[Path]]:
        """`paths` in at most one contiguous chunk per worker, in order (none for no paths)."""
        if not paths:
            return []
        size = -(-len(paths) // self._workers)  # ceiling division
        return [paths[start : start + size] for start in range(0, len(paths), size)]

    def _fits_inline(self, path: Path) -> bool:
        if self.inline_bytes <= 0:
            return False
        try:
            return path.stat().st_size <= self.inline_bytes
        except OSError:
            return True  # gone already: ingest reports it the same way wherever it runs

    async def _ingest_in_processes(
        self,
        paths: Sequence[Path],
        expected_study_uid: str | None,
        batch_id: str,
        digests: Mapping[Path, str] | None,
    ) -> list[IngestResult]:
        loop = asyncio.get_running_loop()
        chunks = self._chunks(paths)
        # Each worker gets the digests of its own chunk only: everything handed over is pickled.
        known = [
            {path: digests[path] for path in chunk if path in digests} if digests else None
            for chunk in chunks
        ]
        first, *rest = chunks
        for attempt in (1, 2):
            executor = self._pool()
            try:
                started = loop.run_in_executor(
                    executor, ingest_in_worker, self.target, first, expected_study_uid, batch_id, known[0]
                )
                break
            except BrokenProcessPool:
                # A worker died while idle (the memory killer, say) and nothing of this request was
                # handed over yet: once, a fresh pool takes it.
                self._forget_broken(executor)
                if attempt == 2 or not self._owns_executor:
                    raise
        try:
            jobs = [started]
            for chunk, chunk_digests in zip(rest, known[1:], strict=True):
                job = (self.target, chunk, expected_study_uid, batch_id, chunk_digests)
                jobs.append(loop.run_in_executor(executor, ingest_in_worker, *job))
            return [result for chunk_results in await asyncio.gather(*jobs) for result in chunk_results]
        except BrokenProcessPool:
            # A worker died during this request: it fails (what was stored stays stored), the next
            # request gets a fresh pool.
            self._forget_broken(executor)
            raise

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor = self._executor if self._owns_executor else None
            self._executor = None if self._owns_executor else self._executor
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if self.inline_bytes > 0:
            close_ingestor(self.target)
