"""Ingest: parse -> validate -> write blob -> index, as one unit that either fully happens or not at all.

Why this order: the blob is complete and durable (fsync + rename, or a finished S3 upload) before the index
transaction that makes it visible commits; if the commit fails the new blob is deleted, so there is never
an index row without its blob nor a visible half blob. A replaced instance keeps serving its old blob until
the commit switches the row, and after: the same transaction schedules the old blob's deletion for when
the reads that looked it up are over (app/store/upkeep/deferred_deletion.py). Blob keys are fresh UUIDs, never
UIDs. An instance whose index row has not committed within half the orphan grace period of its blob's
publication fails instead, so garbage collection never removes a blob that is about to be referenced.

Both STOW-RS and `fovea import` go through `Ingestor.ingest`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.pydicom_warnings import reading_instance
from app.store.infra.blobs import BlobStore, new_blob_key
from app.store.infra.db import write_serializer_for
from app.store.infra.outages import INDEX_OUTAGES, is_outage, outage_reason
from app.store.policies import (
    DEFAULT_BLOB_DELETION_GRACE_S,
    DEFAULT_ORPHAN_GRACE_S,
    DuplicatePolicy,
    PatientMismatchPolicy,
    RejectedRestorePolicy,
)
from app.store.upkeep.deferred_deletion import schedule_blob_deletion
from app.store.upkeep.rejected_retention import delete_rejected
from app.store.write.fixity import FileDigests
from app.store.write.group_commit import MAX_BATCH, GroupCommit, IndexWrite
from app.store.write.index_writer import (
    ALREADY_STORED,
    REPEATED_IN_BATCH,
    Indexed,
    StoredBlobs,
    find_stored_instance,
    write_instance,
)
from app.store.write.parse import InstanceProblem, ParsedInstance, Problem, parse_instance
from app.store.write.rejection import (
    RejectedReference,
    RejectionNote,
    find_rejection,
    lift_rejection,
    lock_rejections,
    record_rejection,
    rejection_note_of,
)
from app.store.write.storage_policy import StoragePolicy

log = logging.getLogger(__name__)
# Instances of one `ingest_many` call published before their index writes are grouped: bounded, so a
# request of many instances does not hold many parsed data sets, nor a blob long unindexed.
GROUP_INSTANCES = MAX_BATCH
GROUP_BYTES = 64 * 1024 * 1024
SYNC_AHEAD = 2  # files whose flush to disk is started ahead, per chunk


class Outcome(StrEnum):
    STORED = "stored"
    REPLACED = "replaced"  # stored, and a stored instance with the same SOP Instance UID was replaced
    KEPT_EXISTING = "kept-existing"  # policy keep: the stored instance stays, this one was discarded
    # Stored although its patient contradicts the index's (patient-mismatch policy accept-new/update):
    PATIENT_KEPT = "stored-patient-kept"  # filed under the patient the index already had
    PATIENT_UPDATED = "stored-patient-updated"  # the study now filed under this instance's patient
    FAILED = "failed"


_OUTCOME_FOR_PATIENT_POLICY = {
    PatientMismatchPolicy.ACCEPT_NEW: Outcome.PATIENT_KEPT,
    PatientMismatchPolicy.UPDATE: Outcome.PATIENT_UPDATED,
}
_PATIENT_POLICY_NOTE = {
    PatientMismatchPolicy.ACCEPT_NEW: "study's patient kept",
    PatientMismatchPolicy.UPDATE: "study re-filed under this one",
}


@dataclass(frozen=True, slots=True)
class IngestResult:
    outcome: Outcome
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    problem: Problem | None = None
    message: str = ""
    # What this instance, an IHE IOCM rejection note, rejected (newly; for the audit trail and caches).
    rejected: tuple[RejectedReference, ...] = ()

    @property
    def stored(self) -> bool:
        return self.outcome not in (Outcome.FAILED,)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """An instance parsed, checked and published, waiting for its index write."""

    parsed: ParsedInstance
    blobs: StoredBlobs
    batch_id: str | None
    publishing: float  # time.monotonic() when its blob began to be published
    note: RejectionNote | None
    name: str  # of the file received, for the log


class Ingestor:
    """Stores Part 10 files into a blob store and the index (thread-safe; one per process)."""

    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        duplicate_policy: DuplicatePolicy,
        storage: StoragePolicy | None = None,
        *,
        max_inflated_bytes: int | None = None,
        deletion_grace_s: float = DEFAULT_BLOB_DELETION_GRACE_S,
        orphan_grace_s: float = DEFAULT_ORPHAN_GRACE_S,
        patient_policy: PatientMismatchPolicy = PatientMismatchPolicy.REJECT,
        rejected_restore: RejectedRestorePolicy = RejectedRestorePolicy.REFUSE,
        delete_rejected_at_once: bool = False,
    ) -> None:
        self.engine = engine
        self.rejected_restore = rejected_restore
        self.delete_rejected_at_once = delete_rejected_at_once  # FOVEA_REJECTED_DELETE_AFTER_DAYS=0
        self.max_inflated_bytes = max_inflated_bytes
        self.blobs = blobs
        self.duplicate_policy = duplicate_policy
        self.patient_policy = patient_policy
        self.storage = storage or StoragePolicy()
        self.deletion_grace = timedelta(seconds=deletion_grace_s)
        self.index_deadline_s = orphan_grace_s / 2
        self._group_commit = GroupCommit(
            engine,
            write_serializer_for(engine),
            lambda connection, exclusive: lock_rejections(connection, exclusive=exclusive),
        )
        self._digests = FileDigests()

    def ingest(
        self,
        path: Path,
        *,
        expected_study_uid: str | None = None,
        batch_id: str | None = None,
        source: str | None = None,
    ) -> IngestResult:
        """Store the file at `path` (consumed: moved into the blob store or deleted).

        `batch_id` names the STOW-RS request or import run: a SOP Instance UID already stored by the
        same batch is refused as repeated rather than replaced. What pydicom warns about while the
        file is read is logged as one record naming the instance and `source` (default: the file name).
        """
        prepared = self._prepare(path, expected_study_uid, batch_id, source, self.blobs.start_sync(path))
        if isinstance(prepared, IngestResult):
            return prepared
        return self._index([prepared])[0]

    def ingest_many(
        self,
        paths: Sequence[Path],
        *,
        expected_study_uid: str | None = None,
        batch_id: str | None = None,
        digests: Mapping[Path, str] | None = None,
    ) -> list[IngestResult]:
        """Store the files at `paths` (each consumed, as by `ingest`); the results in the same order.

        `digests`: the SHA-256 already taken of some of the files (the STOW-RS spooler hashes each
        part as it writes it); the others are read again for theirs.

        Why together: the files are parsed and their blobs published one by one, then indexed in groups
        that share one transaction and one commit (store/write/group_commit.py); each still succeeds or
        fails on its own. Once the index or blob store turns out to be unavailable, the rest are not
        tried: each would wait out the same timeouts, and the request is answered 503 as a whole anyway.
        """
        results: list[IngestResult | None] = [None] * len(paths)
        group: list[tuple[int, _Prepared]] = []
        group_bytes = 0
        outage: str | None = None
        # The flushes to disk of the next few files start ahead of their parse: several in flight keep
        # the disk busier than one at a time (put_file waits for each before publishing its file). A
        # few, not all: the flush threads are shared with the other chunks being stored meanwhile.
        syncs: dict[int, Future[None]] = {}
        for position, path in enumerate(paths):
            for ahead in range(position, min(position + SYNC_AHEAD, len(paths))):
                if ahead not in syncs:
                    syncs[ahead] = self.blobs.start_sync(paths[ahead])
            synced = syncs.pop(position)
            if outage is not None:
                synced.cancel()
                path.unlink(missing_ok=True)
                continue
            known = digests.get(path, "") if digests else ""
            prepared = self._prepare(path, expected_study_uid, batch_id, None, synced, known)
            if isinstance(prepared, IngestResult):
                results[position] = prepared
                outage = prepared.message if prepared.problem is Problem.UNAVAILABLE else None
                continue
            group.append((position, prepared))
            group_bytes += prepared.blobs.size
            if len(group) >= GROUP_INSTANCES or group_bytes >= GROUP_BYTES:
                outage = self._index_group(group, results)
                group, group_bytes = [], 0
        outage = self._index_group(group, results) or outage
        skipped = IngestResult(Outcome.FAILED, problem=Problem.UNAVAILABLE, message=outage or "")
        return [skipped if result is None else result for result in results]

    def _index_group(
        self, group: list[tuple[int, _Prepared]], results: list[IngestResult | None]
    ) -> str | None:
        """Index `group`, its results put in their `results` places; the message of an outage, if any."""
        outage = None
        for (position, _), result in zip(
            group, self._index([prepared for _, prepared in group]), strict=True
        ):
            results[position] = result
            if result.problem is Problem.UNAVAILABLE:
                outage = result.message
        return outage

    def _prepare(
        self,
        path: Path,
        expected_study_uid: str | None,
        batch_id: str | None,
        source: str | None,
        synced: Future[None],
        known_sha256: str = "",
    ) -> IngestResult | _Prepared:
        """Parse, check and publish the blob of one file: what its index write needs, or its result.

        `synced` is the flush of `path` to disk that `blobs.start_sync` began; `known_sha256` the
        file's digest when already taken ("": not yet)."""
        with reading_instance(source or path.name) as warned:
            prepared = self._ingest(path, expected_study_uid, batch_id, synced, known_sha256)
            warned.sop_instance_uid = (
                prepared.sop_instance_uid
                if isinstance(prepared, IngestResult)
                else prepared.parsed.sop_instance_uid
            )
        return prepared

    def _ingest(
        self,
        path: Path,
        expected_study_uid: str | None,
        batch_id: str | None,
        synced: Future[None],
        known_sha256: str,
    ) -> IngestResult | _Prepared:
        parsed: ParsedInstance | None = None
        digest = self._digests.start(path, known=known_sha256)
        try:
            parsed = parse_instance(
                path, work_directory=self.blobs.spool_directory, max_inflated_bytes=self.max_inflated_bytes
            )
            self.storage.check_accepted(parsed)
            converted = self.storage.converted(path, parsed, self.blobs.spool_directory)
            if converted is not None:  # the converted file is stored; the one received is not
                path.unlink(missing_ok=True)
                if parsed.inflated_file is not None:
                    parsed.inflated_file.unlink(missing_ok=True)
                path, parsed = converted
                synced = self.blobs.start_sync(path)
                digest = self._digests.start(path)
            return self._store(path, parsed, expected_study_uid, batch_id, synced, digest)
        except InstanceProblem as problem:
            if parsed is not None:  # failed after the parse: name the instance fully
                return _result(Outcome.FAILED, parsed, problem=problem.problem, message=problem.message)
            return IngestResult(
                Outcome.FAILED,
                problem.sop_class_uid,
                problem.sop_instance_uid,
                problem=problem.problem,
                message=problem.message,
            )
        except Exception as exc:  # the per-instance boundary: one broken instance, one failure entry
            return _unexpected_failure(exc, parsed, path.name)
        finally:
            path.unlink(missing_ok=True)
            if parsed is not None and parsed.inflated_file is not None:
                parsed.inflated_file.unlink(missing_ok=True)

    def _store(
        self,
        path: Path,
        parsed: ParsedInstance,
        expected_study_uid: str | None,
        batch_id: str | None,
        synced: Future[None],
        digest: Future[str],
    ) -> IngestResult | _Prepared:
        if expected_study_uid is not None and parsed.study_instance_uid != expected_study_uid:
            return _result(
                Outcome.FAILED,
                parsed,
                problem=Problem.STUDY_MISMATCH,
                message="Study Instance UID differs from the one in the request URL",
            )
        stored = None
        if self.duplicate_policy is not DuplicatePolicy.REPLACE:
            with self.engine.connect() as connection:
                self._check_rejection(connection, parsed, lifting=False)
                stored = find_stored_instance(connection, parsed.sop_instance_uid)
        if stored is not None:
            if batch_id is not None and stored.batch_id == batch_id:
                return _result(
                    Outcome.FAILED,
                    parsed,
                    problem=Problem.DUPLICATE,
                    message=REPEATED_IN_BATCH,
                )
            if self.duplicate_policy is DuplicatePolicy.KEEP:
                return _result(
                    Outcome.KEPT_EXISTING,
                    parsed,
                    message="already stored; kept the stored instance",
                )
            return _result(
                Outcome.FAILED,
                parsed,
                problem=Problem.DUPLICATE,
                message=ALREADY_STORED,
            )

        blob_key = new_blob_key()
        data_blob_key = new_blob_key(".inflated.dcm") if parsed.inflated_file else None
        size = path.stat().st_size
        sha256 = digest.result()  # before put_file moves or removes the file
        publishing = time.monotonic()
        try:
            self.blobs.put_file(blob_key, path, synced=synced)
            if parsed.inflated_file is not None and data_blob_key is not None:
                self.blobs.put_file(data_blob_key, parsed.inflated_file)
        except BaseException as exc:  # a first blob may be complete: never leave it unreferenced
            self._delete_blobs((blob_key, data_blob_key))
            if is_outage(exc):
                raise InstanceProblem(Problem.UNAVAILABLE, outage_reason(exc)) from exc
            if isinstance(exc, OSError):
                raise InstanceProblem(Problem.STORAGE_FAILURE, f"blob store failed: {exc}") from exc
            raise

        stored_blobs = StoredBlobs(blob_key, data_blob_key, size, sha256)
        return _Prepared(parsed, stored_blobs, batch_id, publishing, rejection_note_of(parsed), path.name)

    def _index(self, batch: Sequence[_Prepared]) -> list[IngestResult]:
        """Index published instances in shared transactions; a failed one's new blobs are deleted."""
        writes = [
            IndexWrite(partial(self._write_index, prepared), exclusive=prepared.note is not None)
            for prepared in batch
        ]
        self._group_commit.run(writes)
        results = []
        for prepared, write in zip(batch, writes, strict=True):
            if write.error is None and write.result is not None:
                results.append(_indexed_result(prepared.parsed, *write.result))
                continue
            self._delete_blobs((prepared.blobs.blob_key, prepared.blobs.data_blob_key))
            error = write.error or RuntimeError("the index write was abandoned")
            results.append(_index_failure(error, prepared))
        return results

    def _write_index(
        self, prepared: _Prepared, connection: Connection
    ) -> tuple[Indexed, tuple[RejectedReference, ...]]:
        """One instance's index rows, in the transaction `connection` is in (group_commit.py)."""
        parsed, note = prepared.parsed, prepared.note
        self._check_rejection(connection, parsed)
        indexed = write_instance(
            connection,
            parsed,
            prepared.blobs,
            policy=self.duplicate_policy,
            batch_id=prepared.batch_id,
            patient_policy=self.patient_policy,
        )
        if indexed.replaced is not None:  # in the same transaction: never lost track of
            after = datetime.now(UTC) + self.deletion_grace
            for key in indexed.replaced.blob_keys:
                schedule_blob_deletion(connection, key, after)
        rejected: tuple[RejectedReference, ...] = ()
        if note is not None:  # the note and what it hides commit together
            now = datetime.now(UTC)
            rejected = record_rejection(connection, note, now)
            if self.delete_rejected_at_once:
                blobs_after = now + self.deletion_grace
                delete_rejected(connection, rejected_before=now, blobs_after=blobs_after, limit=None)
        self._check_deadline(prepared.publishing)
        return indexed, rejected

    def _delete_blobs(self, keys: tuple[str | None, ...]) -> None:
        """Remove blobs no index row ever referred to (no reader can hold them); a failure leaves an
        orphan for garbage collection."""
        for key in keys:
            if key is None:
                continue
            try:
                self.blobs.delete(key)
            except OSError:
                log.exception("could not delete blob %s; it is unreferenced", key)

    def _check_rejection(
        self, connection: Connection, parsed: ParsedInstance, *, lifting: bool = True
    ) -> None:
        """Refuse an instance a rejection note rejected, or (`lifting`, in the index transaction) lift
        the rejection, as FOVEA_REJECTED_RESTORE says."""
        rejection = find_rejection(connection, parsed.sop_instance_uid)
        if rejection is None:
            return
        if self.rejected_restore is RejectedRestorePolicy.ACCEPT:
            if lifting:
                lift_rejection(connection, parsed.sop_instance_uid)
            return
        raise InstanceProblem(
            Problem.REJECTED,
            f"this SOP Instance UID was rejected ({rejection.reason}, code {rejection.reason_code}) by "
            f"rejection note {rejection.note_sop_instance_uid}; it is not stored again "
            "(FOVEA_REJECTED_RESTORE=refuse)",
        )

    def _check_deadline(self, publishing: float) -> None:
        """Refuse to commit a row for a blob that garbage collection may already take for an orphan."""
        waited = time.monotonic() - publishing
        if waited > self.index_deadline_s:
            raise InstanceProblem(
                Problem.STORAGE_FAILURE,
                f"indexing took {waited:.0f} s after the file was stored, longer than the "
                f"{self.index_deadline_s:.0f} s allowed (half FOVEA_ORPHAN_GRACE_S); try again",
            )


def _is_system_error(exc: Exception) -> bool:
    """An error of the disk or network (it has an errno), not pydicom's bare OSError on malformed data
    ("No tag to read at file position ...")."""
    return isinstance(exc, OSError) and exc.errno is not None


def _result(
    outcome: Outcome,
    parsed: ParsedInstance,
    *,
    problem: Problem | None = None,
    message: str = "",
    rejected: tuple[RejectedReference, ...] = (),
) -> IngestResult:
    return IngestResult(
        outcome,
        parsed.sop_class_uid,
        parsed.sop_instance_uid,
        parsed.study_instance_uid,
        parsed.series_instance_uid,
        problem,
        message,
        rejected,
    )


def _indexed_result(
    parsed: ParsedInstance, indexed: Indexed, rejected: tuple[RejectedReference, ...]
) -> IngestResult:
    conflict = indexed.patient_conflict
    if conflict is not None:  # the more important news, when an instance was replaced as well
        differs = ", ".join(conflict.attributes)
        return _result(
            _OUTCOME_FOR_PATIENT_POLICY[conflict.policy],
            parsed,
            message=f"patient differs ({differs}); {_PATIENT_POLICY_NOTE[conflict.policy]}",
            rejected=rejected,
        )
    if indexed.replaced is None:
        return _result(Outcome.STORED, parsed, rejected=rejected)
    return _result(
        Outcome.REPLACED,
        parsed,
        message="replaced the stored instance with the same SOP Instance UID",
        rejected=rejected,
    )


def _index_failure(error: BaseException, prepared: _Prepared) -> IngestResult:
    """The result of an instance whose index write failed with `error`."""
    parsed = prepared.parsed
    if isinstance(error, InstanceProblem):
        return _result(Outcome.FAILED, parsed, problem=error.problem, message=error.message)
    if isinstance(error, IntegrityError):  # still colliding after group_commit.ATTEMPTS tries
        return _result(
            Outcome.FAILED, parsed, problem=Problem.STORAGE_FAILURE, message=f"index conflict: {error.orig}"
        )
    if isinstance(error, INDEX_OUTAGES):
        return _result(Outcome.FAILED, parsed, problem=Problem.UNAVAILABLE, message=outage_reason(error))
    if isinstance(error, SQLAlchemyError):
        return _result(
            Outcome.FAILED, parsed, problem=Problem.STORAGE_FAILURE, message=f"index failed: {error}"
        )
    if not isinstance(error, Exception):
        raise error  # an interrupt: not one instance's failure
    return _unexpected_failure(error, parsed, prepared.name)


def _unexpected_failure(exc: Exception, parsed: ParsedInstance | None, name: str) -> IngestResult:
    """The failure entry for an exception no check anticipated (logged, with its traceback)."""
    if is_outage(exc):
        log.warning("ingest of %s failed: %s", name, outage_reason(exc))
        return IngestResult(
            Outcome.FAILED,
            parsed.sop_class_uid if parsed else "",
            parsed.sop_instance_uid if parsed else "",
            problem=Problem.UNAVAILABLE,
            message=outage_reason(exc),
        )
    log.error("ingest of %s failed", name, exc_info=exc)
    if parsed is None and not _is_system_error(exc):
        # The parser tripped over the data itself: retrying cannot help, so not 0x0110/503.
        return IngestResult(
            Outcome.FAILED,
            problem=Problem.NOT_DICOM,
            message=f"unreadable DICOM data set: {exc or type(exc).__name__}",
        )
    return IngestResult(
        Outcome.FAILED,
        parsed.sop_class_uid if parsed else "",
        parsed.sop_instance_uid if parsed else "",
        problem=Problem.STORAGE_FAILURE,
        message=f"internal error while storing: {type(exc).__name__}",
    )
