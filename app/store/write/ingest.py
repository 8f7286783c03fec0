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
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
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
_COMMIT_ATTEMPTS = 3  # concurrent first stores of one study/series race on the unique keys


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
        self._serialized_writes = write_serializer_for(engine)
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
        with reading_instance(source or path.name) as warned:
            result = self._ingest(path, expected_study_uid, batch_id)
            warned.sop_instance_uid = result.sop_instance_uid
        return result

    def _ingest(self, path: Path, expected_study_uid: str | None, batch_id: str | None) -> IngestResult:
        parsed: ParsedInstance | None = None
        synced = self.blobs.start_sync(path)  # flushes to disk while the file is parsed
        digest = self._digests.start(path)  # and hashes it
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
            if is_outage(exc):
                log.warning("ingest of %s failed: %s", path.name, outage_reason(exc))
                return IngestResult(
                    Outcome.FAILED,
                    parsed.sop_class_uid if parsed else "",
                    parsed.sop_instance_uid if parsed else "",
                    problem=Problem.UNAVAILABLE,
                    message=outage_reason(exc),
                )
            log.exception("ingest of %s failed", path.name)
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
    ) -> IngestResult:
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

        note = rejection_note_of(parsed)
        try:
            indexed, rejected = self._index_with_retries(
                parsed, StoredBlobs(blob_key, data_blob_key, size, sha256), batch_id, publishing, note
            )
        except BaseException:  # nothing indexed: the new blobs must not outlive the failure
            self._delete_blobs((blob_key, data_blob_key))
            raise
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

    def _index_with_retries(
        self,
        parsed: ParsedInstance,
        blobs: StoredBlobs,
        batch_id: str | None,
        publishing: float,
        note: RejectionNote | None,
    ) -> tuple[Indexed, tuple[RejectedReference, ...]]:
        attempt = 1
        while True:
            try:
                with self._serialized_writes(), self.engine.begin() as connection:
                    lock_rejections(connection, exclusive=note is not None)
                    self._check_rejection(connection, parsed)
                    indexed = write_instance(
                        connection,
                        parsed,
                        blobs,
                        policy=self.duplicate_policy,
                        batch_id=batch_id,
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
                            delete_rejected(
                                connection, rejected_before=now, blobs_after=blobs_after, limit=None
                            )
                    self._check_deadline(publishing)
                    return indexed, rejected
            except IntegrityError as exc:
                if attempt >= _COMMIT_ATTEMPTS:
                    raise InstanceProblem(Problem.STORAGE_FAILURE, f"index conflict: {exc.orig}") from exc
                attempt += 1
            except INDEX_OUTAGES as exc:
                raise InstanceProblem(Problem.UNAVAILABLE, outage_reason(exc)) from exc
            except SQLAlchemyError as exc:
                raise InstanceProblem(Problem.STORAGE_FAILURE, f"index failed: {exc}") from exc

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
