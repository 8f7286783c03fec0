"""Ingest: parse -> validate -> write blob -> index, as one unit that either fully happens or not at all.

Why this order: the blob is complete and durable (fsync + rename, or a finished S3 upload) before the index
transaction that makes it visible commits; if the commit fails the new blob is deleted, so there is never
an index row without its blob nor a visible half blob. A replaced instance keeps serving its old blob until
the commit switches the row; only then is the old blob removed. Blob keys are fresh UUIDs, never UIDs.

Both STOW-RS and `fovea import` go through `Ingestor.ingest`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from app.settings import DuplicatePolicy
from app.store.blobs import BlobStore, new_blob_key
from app.store.index import (
    BulkDataRow,
    FrameFragmentRow,
    Instance,
    InstanceMetadata,
    Patient,
    RequestAttribute,
    Series,
    Study,
)
from app.store.parse import InstanceProblem, ParsedInstance, Problem, parse_instance

log = logging.getLogger(__name__)
_COMMIT_ATTEMPTS = 3  # concurrent first stores of one study/series race on the unique keys


class Outcome(StrEnum):
    STORED = "stored"
    REPLACED = "replaced"  # stored, and a stored instance with the same SOP Instance UID was replaced
    KEPT_EXISTING = "kept-existing"  # policy keep: the stored instance stays, this one was discarded
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class IngestResult:
    outcome: Outcome
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    problem: Problem | None = None
    message: str = ""

    @property
    def stored(self) -> bool:
        return self.outcome in (Outcome.STORED, Outcome.REPLACED, Outcome.KEPT_EXISTING)


@dataclass(frozen=True, slots=True)
class _Replaced:
    blob_keys: tuple[str, ...]


class Ingestor:
    """Stores Part 10 files into a blob store and the index (thread-safe; one per process)."""

    def __init__(self, engine: Engine, blobs: BlobStore, duplicate_policy: DuplicatePolicy) -> None:
        self.engine = engine
        self.blobs = blobs
        self.duplicate_policy = duplicate_policy

    def ingest(
        self,
        path: Path,
        *,
        expected_study_uid: str | None = None,
        claim: Callable[[str], bool] | None = None,
    ) -> IngestResult:
        """Store the file at `path` (consumed: moved into the blob store or deleted).

        `claim(sop_instance_uid)` returning False marks the instance as repeated within one request.
        """
        parsed: ParsedInstance | None = None
        try:
            parsed = parse_instance(path, work_directory=self.blobs.spool_directory)
            if claim is not None and not claim(parsed.sop_instance_uid):
                return IngestResult(
                    Outcome.FAILED,
                    parsed.sop_class_uid,
                    parsed.sop_instance_uid,
                    problem=Problem.DUPLICATE,
                    message="SOP Instance UID repeated in this request",
                )
            return self._store(path, parsed, expected_study_uid)
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
            log.exception("ingest of %s failed", path.name)
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

    def _store(self, path: Path, parsed: ParsedInstance, expected_study_uid: str | None) -> IngestResult:
        if expected_study_uid is not None and parsed.study_instance_uid != expected_study_uid:
            return _result(
                Outcome.FAILED,
                parsed,
                problem=Problem.STUDY_MISMATCH,
                message="Study Instance UID differs from the one in the request URL",
            )
        if self.duplicate_policy is not DuplicatePolicy.REPLACE and self._exists(parsed):
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
                message="SOP Instance UID is already stored",
            )

        blob_key = new_blob_key()
        data_blob_key = new_blob_key(".inflated.dcm") if parsed.inflated_file else None
        size = path.stat().st_size
        try:
            self.blobs.put_file(blob_key, path)
            if parsed.inflated_file is not None and data_blob_key is not None:
                self.blobs.put_file(data_blob_key, parsed.inflated_file)
        except BaseException as exc:  # a first blob may be complete: never leave it unreferenced
            self._delete_blobs((blob_key, data_blob_key))
            if isinstance(exc, OSError):
                raise InstanceProblem(Problem.STORAGE_FAILURE, f"blob store failed: {exc}") from exc
            raise

        try:
            replaced = self._index_with_retries(parsed, blob_key, data_blob_key, size)
        except BaseException:  # nothing indexed: the new blobs must not outlive the failure
            self._delete_blobs((blob_key, data_blob_key))
            raise
        if replaced is None:
            return _result(Outcome.STORED, parsed)
        self._delete_blobs(replaced.blob_keys)
        return _result(
            Outcome.REPLACED,
            parsed,
            message="replaced the stored instance with the same SOP Instance UID",
        )

    def _exists(self, parsed: ParsedInstance) -> bool:
        with Session(self.engine) as session:
            found = session.scalar(
                select(Instance.pk).where(Instance.sop_instance_uid == parsed.sop_instance_uid)
            )
        return found is not None

    def _delete_blobs(self, keys: tuple[str | None, ...]) -> None:
        for key in keys:
            if key is None:
                continue
            try:
                self.blobs.delete(key)
            except OSError:
                log.exception("could not delete blob %s; it is unreferenced", key)

    def _index_with_retries(
        self, parsed: ParsedInstance, blob_key: str, data_blob_key: str | None, size: int
    ) -> _Replaced | None:
        attempt = 1
        while True:
            try:
                with Session(self.engine) as session, session.begin():
                    return _write_index(session, parsed, blob_key, data_blob_key, size, self.duplicate_policy)
            except IntegrityError as exc:
                if attempt >= _COMMIT_ATTEMPTS:
                    raise InstanceProblem(Problem.STORAGE_FAILURE, f"index conflict: {exc.orig}") from exc
                attempt += 1
            except SQLAlchemyError as exc:
                raise InstanceProblem(Problem.STORAGE_FAILURE, f"index failed: {exc}") from exc


def _result(
    outcome: Outcome, parsed: ParsedInstance, *, problem: Problem | None = None, message: str = ""
) -> IngestResult:
    return IngestResult(
        outcome,
        parsed.sop_class_uid,
        parsed.sop_instance_uid,
        parsed.study_instance_uid,
        parsed.series_instance_uid,
        problem,
        message,
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _non_empty(values: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in values.items() if value not in ("", None)}


def _write_index(
    session: Session,
    parsed: ParsedInstance,
    blob_key: str,
    data_blob_key: str | None,
    size: int,
    policy: DuplicatePolicy,
) -> _Replaced | None:
    """Insert or update every row for `parsed` in the open transaction; return what it replaced."""
    now = _now()
    replaced: _Replaced | None = None
    existing = session.scalar(
        select(Instance).where(Instance.sop_instance_uid == parsed.sop_instance_uid).with_for_update()
    )
    if existing is not None:
        if policy is not DuplicatePolicy.REPLACE:  # lost a race with a concurrent store
            raise InstanceProblem(Problem.DUPLICATE, "SOP Instance UID is already stored")
        replaced = _Replaced(tuple(k for k in (existing.blob_key, existing.data_blob_key) if k))
        old_series_pk = existing.series_pk
        session.execute(delete(Instance).where(Instance.pk == existing.pk))
        session.flush()
    study = _upsert_study(session, parsed, now)
    series = _upsert_series(session, parsed, study, now)
    if existing is not None and old_series_pk != series.pk:
        _prune_if_empty(session, old_series_pk)

    pixel = parsed.pixel
    layout = pixel.layout if pixel else None
    instance = Instance(
        sop_instance_uid=parsed.sop_instance_uid,
        series_pk=series.pk,
        sop_class_uid=parsed.sop_class_uid,
        transfer_syntax_uid=parsed.transfer_syntax.uid,
        rows=layout.rows if layout else None,
        columns=layout.columns if layout else None,
        bits_allocated=layout.bits_allocated if layout else None,
        bits_stored=pixel.bits_stored if pixel else None,
        high_bit=pixel.high_bit if pixel else None,
        pixel_representation=pixel.pixel_representation if pixel else None,
        samples_per_pixel=layout.samples_per_pixel if layout else None,
        photometric_interpretation=layout.photometric_interpretation if layout else None,
        planar_configuration=pixel.planar_configuration if pixel else None,
        number_of_frames=layout.number_of_frames if layout else None,
        pixel_data_tag=pixel.tag if pixel else None,
        lossy_image_compression=parsed.lossy_image_compression[:2],
        blob_key=blob_key,
        data_blob_key=data_blob_key,
        blob_size=size,
        created_at=now,
        updated_at=now,
        **parsed.instance,
    )
    session.add(instance)
    session.flush()
    session.add(InstanceMetadata(instance_pk=instance.pk, dicom_json=parsed.metadata_json))
    if parsed.frames:
        session.execute(
            insert(FrameFragmentRow),
            [
                {
                    "instance_pk": instance.pk,
                    "frame_number": f.frame_number,
                    "fragment_index": f.fragment_index,
                    "offset": f.offset,
                    "length": f.length,
                    "bit_offset": f.bit_offset,
                }
                for f in parsed.frames
            ],
        )
    if parsed.bulkdata:
        session.execute(
            insert(BulkDataRow),
            [
                {
                    "instance_pk": instance.pk,
                    "path": b.path,
                    "vr": b.vr,
                    "offset": b.offset,
                    "length": b.length,
                    "little_endian": b.little_endian,
                }
                for b in parsed.bulkdata
            ],
        )
    return replaced


def _find_patient(session: Session, parsed: ParsedInstance) -> Patient:
    attrs = parsed.patient
    patient = None
    if attrs.patient_id:
        patient = session.scalar(
            select(Patient)
            .where(
                Patient.patient_id == attrs.patient_id,
                Patient.issuer_of_patient_id == attrs.issuer_of_patient_id,
            )
            .limit(1)
        )
    if patient is None:
        patient = Patient(patient_id=attrs.patient_id, issuer_of_patient_id=attrs.issuer_of_patient_id)
        session.add(patient)
    for key, value in _non_empty(
        {
            "patient_name": attrs.patient_name,
            "patient_birth_date": attrs.patient_birth_date,
            "patient_sex": attrs.patient_sex,
        }
    ).items():
        setattr(patient, key, value)
    session.flush()
    return patient


def _upsert_study(session: Session, parsed: ParsedInstance, now: datetime) -> Study:
    study = session.scalar(select(Study).where(Study.study_instance_uid == parsed.study_instance_uid))
    if study is None:
        patient = _find_patient(session, parsed)
        study = Study(
            study_instance_uid=parsed.study_instance_uid,
            patient_pk=patient.pk,
            created_at=now,
            **parsed.study,
        )
        session.add(study)
    else:
        for key, value in _non_empty(dict(parsed.study)).items():
            setattr(study, key, value)
        patient = session.get_one(Patient, study.patient_pk)
        for key, value in _non_empty(
            {
                "patient_name": parsed.patient.patient_name,
                "patient_birth_date": parsed.patient.patient_birth_date,
                "patient_sex": parsed.patient.patient_sex,
            }
        ).items():
            setattr(patient, key, value)
    study.updated_at = now
    session.flush()
    return study


def _upsert_series(session: Session, parsed: ParsedInstance, study: Study, now: datetime) -> Series:
    series = session.scalar(select(Series).where(Series.series_instance_uid == parsed.series_instance_uid))
    if series is None:
        series = Series(
            series_instance_uid=parsed.series_instance_uid,
            study_pk=study.pk,
            updated_at=now,
            **parsed.series,
        )
        session.add(series)
        session.flush()
    elif series.study_pk != study.pk:
        raise InstanceProblem(Problem.CONFLICT, "its Series Instance UID is filed under another study")
    else:
        for key, value in _non_empty(dict(parsed.series)).items():
            setattr(series, key, value)
        series.updated_at = now
    if parsed.request_attributes:
        session.execute(delete(RequestAttribute).where(RequestAttribute.series_pk == series.pk))
        session.execute(
            insert(RequestAttribute),
            [
                {
                    "series_pk": series.pk,
                    "scheduled_procedure_step_id": step,
                    "requested_procedure_id": procedure,
                }
                for step, procedure in parsed.request_attributes
            ],
        )
    return series


def _prune_if_empty(session: Session, series_pk: int) -> None:
    """Remove a series (and then its study) that a replacement left without instances."""
    remaining = session.scalar(select(func.count()).where(Instance.series_pk == series_pk))
    if remaining:
        return
    study_pk = session.scalar(select(Series.study_pk).where(Series.pk == series_pk))
    session.execute(delete(Series).where(Series.pk == series_pk))
    if study_pk is not None and not session.scalar(select(func.count()).where(Series.study_pk == study_pk)):
        session.execute(delete(Study).where(Study.pk == study_pk))
