"""Writing one parsed instance into the index: patient, study, series, instance, frames, bulk data.

Why SQLAlchemy Core rather than the ORM: this runs once per stored instance, and a handful of plain
statements (about seven for an instance of a known series) cost a fraction of the ORM's unit of work.
Everything happens in the caller's transaction, so an instance is indexed completely or not at all.

A repeated SOP Instance UID within one batch (a STOW-RS request or an import run, `batch_id`) is refused
here rather than in memory, so the rule holds whichever worker process stores which part.

Patient identity is never rewritten silently: an instance whose Patient ID (with issuer) or name
contradicts the patient its study is filed under (store/write/patient_identity.py) is refused, or stored with
a note of what the patient-mismatch policy did. Two first instances of one study naming different
patients cannot both win: the study's unique key makes the second writer retry and see the first's
patient.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, update

from app.dicomweb.query_keys import ingested_columns, person_name_form_columns
from app.store.policies import DuplicatePolicy, PatientMismatchPolicy
from app.store.query_tags import index_instance_values
from app.store.tables import (
    Base,
    BulkDataRow,
    FrameFragmentRow,
    Instance,
    InstanceMetadata,
    Patient,
    RequestAttribute,
    Series,
    Study,
)
from app.store.write.attributes import person_name_search_forms
from app.store.write.parse import InstanceProblem, ParsedInstance, Problem
from app.store.write.patient_identity import PatientIdentity, conflicting_attributes

# The columns an instance updates (app/dicomweb/query_keys.py), with the matching forms of PN values.
_STUDY_FIELDS = (*ingested_columns("study"), *person_name_form_columns("study"))
_SERIES_FIELDS = tuple(ingested_columns("series"))
_PATIENT_DEMOGRAPHICS = (*ingested_columns("patient"), *person_name_form_columns("patient"))
REPEATED_IN_BATCH = "SOP Instance UID repeated in this request or import run"
ALREADY_STORED = "SOP Instance UID is already stored"


@dataclass(frozen=True, slots=True)
class StoredBlobs:
    blob_key: str
    data_blob_key: str | None
    size: int
    sha256: str | None = None  # of the blob as stored (app/store/write/fixity.py)


@dataclass(frozen=True, slots=True)
class Replaced:
    """What a replacement removed from the index: its blobs, whose deletion the caller schedules in
    the same transaction (app/store/upkeep/deferred_deletion.py)."""

    blob_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PatientConflict:
    """The instance's patient contradicted the index's; it was stored as `policy` says (not REJECT)."""

    attributes: tuple[str, ...]  # keywords: PatientID, IssuerOfPatientID, PatientName
    policy: PatientMismatchPolicy


@dataclass(frozen=True, slots=True)
class Indexed:
    """What indexing one instance did besides adding it."""

    replaced: Replaced | None = None
    patient_conflict: PatientConflict | None = None


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


_patient, _study, _series, _instance = _table(Patient), _table(Study), _table(Series), _table(Instance)
_requests = _table(RequestAttribute)
# Statements are built once; values travel as parameters, so each compiles once and is cached.
_SELECT_INSTANCE = (
    select(
        _instance.c.pk,
        _instance.c.series_pk,
        _instance.c.blob_key,
        _instance.c.data_blob_key,
        _instance.c.batch_id,
    )
    .where(_instance.c.sop_instance_uid == bindparam("uid"))
    .with_for_update()
)
_SELECT_STUDY = (
    select(
        _study.c.pk,
        _study.c.patient_pk,
        _patient.c.patient_id,
        _patient.c.issuer_of_patient_id,
        *(_study.c[name] for name in _STUDY_FIELDS),
        *(_patient.c[name] for name in _PATIENT_DEMOGRAPHICS),
    )
    .join(_patient, _patient.c.pk == _study.c.patient_pk)
    .where(_study.c.study_instance_uid == bindparam("uid"))
)
_SELECT_SERIES = select(
    _series.c.pk, _series.c.study_pk, *(_series.c[name] for name in _SERIES_FIELDS)
).where(_series.c.series_instance_uid == bindparam("uid"))
_SELECT_PATIENT = (
    select(_patient.c.pk, *(_patient.c[name] for name in _PATIENT_DEMOGRAPHICS))
    .where(
        _patient.c.patient_id == bindparam("patient_id"),
        _patient.c.issuer_of_patient_id == bindparam("issuer"),
    )
    .limit(1)
)
_INSERT_PATIENT = insert(_patient).returning(_patient.c.pk)
_INSERT_STUDY = insert(_study).returning(_study.c.pk)
_INSERT_SERIES = insert(_series).returning(_series.c.pk)
_INSERT_INSTANCE = insert(_instance).returning(_instance.c.pk)
_INSERT_METADATA = insert(_table(InstanceMetadata))
_INSERT_FRAMES = insert(_table(FrameFragmentRow))
_INSERT_BULKDATA = insert(_table(BulkDataRow))


def write_instance(
    connection: Connection,
    parsed: ParsedInstance,
    blobs: StoredBlobs,
    *,
    policy: DuplicatePolicy,
    batch_id: str | None,
    patient_policy: PatientMismatchPolicy = PatientMismatchPolicy.REJECT,
) -> Indexed:
    """Index `parsed` in the open transaction; say what it replaced and how its patient was filed.

    Raises InstanceProblem (PATIENT_MISMATCH) when its patient contradicts the index's and the policy
    is REJECT; the caller's transaction then rolls back, leaving the index as it was.
    """
    now = datetime.now(UTC)
    existing = connection.execute(_SELECT_INSTANCE, {"uid": parsed.sop_instance_uid}).first()
    replaced = None
    if existing is not None:
        if batch_id is not None and existing.batch_id == batch_id:
            raise InstanceProblem(Problem.DUPLICATE, REPEATED_IN_BATCH)
        if policy is not DuplicatePolicy.REPLACE:  # only reached when a concurrent store won
            raise InstanceProblem(Problem.DUPLICATE, ALREADY_STORED)
        replaced = Replaced(tuple(k for k in (existing.blob_key, existing.data_blob_key) if k))
        connection.execute(delete(_instance).where(_instance.c.pk == existing.pk))  # cascades

    study_pk, conflict = _upsert_study(
        connection, parsed, now, patient_policy, replacing=existing is not None
    )
    series_pk = _upsert_series(connection, parsed, study_pk, now)
    if existing is not None and existing.series_pk != series_pk:
        _prune_if_empty(connection, existing.series_pk)
    instance_values = _instance_values(parsed, blobs, series_pk, batch_id, now)
    instance_pk = connection.execute(_INSERT_INSTANCE, instance_values).scalar_one()
    connection.execute(_INSERT_METADATA, {"instance_pk": instance_pk, "dicom_json": parsed.metadata_json})
    index_instance_values(connection, instance_pk, series_pk, study_pk, parsed.metadata_json)
    if parsed.frames:
        connection.execute(
            _INSERT_FRAMES,
            [
                {
                    "instance_pk": instance_pk,
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
        connection.execute(
            _INSERT_BULKDATA,
            [
                {
                    "instance_pk": instance_pk,
                    "path": b.path,
                    "vr": b.vr,
                    "offset": b.offset,
                    "length": b.length,
                    "little_endian": b.little_endian,
                }
                for b in parsed.bulkdata
            ],
        )
    return Indexed(replaced, conflict)


@dataclass(frozen=True, slots=True)
class StoredInstanceRef:
    batch_id: str | None


def find_stored_instance(connection: Connection, sop_instance_uid: str) -> StoredInstanceRef | None:
    """The stored instance with this SOP Instance UID (which batch stored it), if any."""
    row = connection.execute(_SELECT_INSTANCE, {"uid": sop_instance_uid}).first()
    return None if row is None else StoredInstanceRef(row.batch_id)


def _instance_values(
    parsed: ParsedInstance, blobs: StoredBlobs, series_pk: int, batch_id: str | None, now: datetime
) -> dict[str, Any]:
    pixel = parsed.pixel
    values: dict[str, Any] = {
        "sop_instance_uid": parsed.sop_instance_uid,
        "series_pk": series_pk,
        "sop_class_uid": parsed.sop_class_uid,
        "transfer_syntax_uid": parsed.transfer_syntax.uid,
        "lossy_image_compression": parsed.lossy_image_compression[:2],
        "blob_key": blobs.blob_key,
        "data_blob_key": blobs.data_blob_key,
        "blob_size": blobs.size,
        "sha256": blobs.sha256,
        "batch_id": batch_id,
        "created_at": now,
        "updated_at": now,
        **parsed.instance,
    }
    if pixel is not None:
        layout = pixel.layout
        values.update(
            rows=layout.rows,
            columns=layout.columns,
            bits_allocated=layout.bits_allocated,
            samples_per_pixel=layout.samples_per_pixel,
            number_of_frames=layout.number_of_frames,
            photometric_interpretation=layout.photometric_interpretation,
            bits_stored=pixel.bits_stored,
            high_bit=pixel.high_bit,
            pixel_representation=pixel.pixel_representation,
            planar_configuration=pixel.planar_configuration,
            pixel_data_tag=pixel.tag,
        )
    return values


def _changes(row: Any, values: Mapping[str, object]) -> dict[str, object]:
    """The non-empty new values that differ from the stored row (empty never erases a value)."""
    return {
        key: value for key, value in values.items() if value not in ("", None) and getattr(row, key) != value
    }


def _upsert_study(
    connection: Connection,
    parsed: ParsedInstance,
    now: datetime,
    policy: PatientMismatchPolicy,
    *,
    replacing: bool,
) -> tuple[int, PatientConflict | None]:
    row = connection.execute(_SELECT_STUDY, {"uid": parsed.study_instance_uid}).first()
    if row is None:
        patient_pk, conflict = _patient_for_new_study(connection, parsed, policy)
        values = {
            "study_instance_uid": parsed.study_instance_uid,
            "patient_pk": patient_pk,
            "created_at": now,
            "updated_at": now,
            **_study_values(parsed),
        }
        return int(connection.execute(_INSERT_STUDY, values).scalar_one()), conflict
    if study_changes := _changes(row, _study_values(parsed)):
        connection.execute(
            update(_study).where(_study.c.pk == row.pk).values(**study_changes, updated_at=now)
        )
    if replacing and not _has_instances(connection, row.pk):
        # The replaced instance was the study's only one: nothing else vouches for its patient, so a
        # corrected re-send files the study as a new study would be filed.
        patient_pk, conflict = _patient_for_new_study(connection, parsed, policy, vacated_study_pk=row.pk)
        _file_study_under(connection, row.pk, row.patient_pk, patient_pk)
        return int(row.pk), conflict
    stored = PatientIdentity(row.patient_id, row.issuer_of_patient_id, row.patient_name)
    attributes = conflicting_attributes(stored, _identity(parsed))
    if not attributes:
        _fill_in_demographics(connection, row.patient_pk, row, parsed)
        return int(row.pk), None
    if policy is PatientMismatchPolicy.REJECT:
        raise InstanceProblem(
            Problem.PATIENT_MISMATCH, f"patient differs from the study's: {', '.join(attributes)}"
        )
    if policy is PatientMismatchPolicy.UPDATE:
        _file_study_under(connection, row.pk, row.patient_pk, _patient_taking_identity(connection, parsed))
    return int(row.pk), PatientConflict(attributes, policy)


def _identity(parsed: ParsedInstance) -> PatientIdentity:
    patient = parsed.patient
    return PatientIdentity(patient.patient_id, patient.issuer_of_patient_id, patient.patient_name)


def _has_instances(connection: Connection, study_pk: int) -> bool:
    found = connection.execute(
        select(_instance.c.pk)
        .join(_series, _series.c.pk == _instance.c.series_pk)
        .where(_series.c.study_pk == study_pk)
        .limit(1)
    ).first()
    return found is not None


def _file_study_under(connection: Connection, study_pk: int, old_patient_pk: int, patient_pk: int) -> None:
    """Point the study at `patient_pk`; drop the old patient if no study is filed under it any more."""
    if patient_pk == old_patient_pk:
        return
    connection.execute(update(_study).where(_study.c.pk == study_pk).values(patient_pk=patient_pk))
    still_used = select(_study.c.pk).where(_study.c.patient_pk == old_patient_pk).exists()
    connection.execute(delete(_patient).where(_patient.c.pk == old_patient_pk, ~still_used))


def _study_values(parsed: ParsedInstance) -> dict[str, str]:
    """The study's attributes with the matching forms of its PN value."""
    name = parsed.study.get("referring_physician_name", "")
    return {**parsed.study, **person_name_search_forms("referring_physician_name", name)}


def _demographics(parsed: ParsedInstance) -> dict[str, str]:
    """The patient's attributes with the matching forms of its name."""
    patient = parsed.patient
    values = {
        "patient_name": patient.patient_name,
        "patient_birth_date": patient.patient_birth_date,
        "patient_sex": patient.patient_sex,
    }
    return {**values, **person_name_search_forms("patient_name", patient.patient_name)}


def _fill_in_demographics(connection: Connection, patient_pk: int, row: Any, parsed: ParsedInstance) -> None:
    """Record what the stored patient lacks or has changed (birth date, sex; a name only where empty).

    A name that matches but is spelt otherwise (case, padding) is left as first stored.
    """
    demographics = _demographics(parsed)
    changes = _changes(row, {k: v for k, v in demographics.items() if not k.startswith("patient_name")})
    if not row.patient_name and demographics["patient_name"]:
        changes.update({k: v for k, v in demographics.items() if k.startswith("patient_name")})
    if changes:
        connection.execute(update(_patient).where(_patient.c.pk == patient_pk).values(**changes))


def _find_patient(connection: Connection, parsed: ParsedInstance) -> Any:
    """The stored patient with the instance's Patient ID and issuer; None without a Patient ID."""
    attrs = parsed.patient
    if not attrs.patient_id:
        return None
    return connection.execute(
        _SELECT_PATIENT, {"patient_id": attrs.patient_id, "issuer": attrs.issuer_of_patient_id}
    ).first()


def _create_patient(connection: Connection, parsed: ParsedInstance) -> int:
    values = {
        "patient_id": parsed.patient.patient_id,
        "issuer_of_patient_id": parsed.patient.issuer_of_patient_id,
        **_demographics(parsed),
    }
    return int(connection.execute(_INSERT_PATIENT, values).scalar_one())


def _patient_for_new_study(
    connection: Connection,
    parsed: ParsedInstance,
    policy: PatientMismatchPolicy,
    *,
    vacated_study_pk: int | None = None,
) -> tuple[int, PatientConflict | None]:
    """The patient a new study is filed under: the stored one with its Patient ID and issuer, or a new
    one (a study with no Patient ID gets its own). A stored patient with another name is a conflict,
    unless the only study filed under it is `vacated_study_pk` (its only instance being replaced)."""
    row = _find_patient(connection, parsed)
    if row is None:
        return _create_patient(connection, parsed), None
    if vacated_study_pk is not None and not _has_other_studies(connection, row.pk, vacated_study_pk):
        _take_demographics(connection, row.pk, parsed)  # nothing else vouches for the stored name
        return int(row.pk), None
    stored = PatientIdentity(parsed.patient.patient_id, parsed.patient.issuer_of_patient_id, row.patient_name)
    attributes = conflicting_attributes(stored, _identity(parsed))
    if not attributes:
        _fill_in_demographics(connection, row.pk, row, parsed)
        return int(row.pk), None
    if policy is PatientMismatchPolicy.REJECT:
        raise InstanceProblem(
            Problem.PATIENT_MISMATCH, "patient differs from the stored one with this ID: PatientName"
        )
    if policy is PatientMismatchPolicy.UPDATE:
        _take_demographics(connection, row.pk, parsed)
    return int(row.pk), PatientConflict(attributes, policy)


def _has_other_studies(connection: Connection, patient_pk: int, study_pk: int) -> bool:
    found = connection.execute(
        select(_study.c.pk).where(_study.c.patient_pk == patient_pk, _study.c.pk != study_pk).limit(1)
    ).first()
    return found is not None


def _patient_taking_identity(connection: Connection, parsed: ParsedInstance) -> int:
    """The patient with the instance's identity, its name and demographics now the instance's."""
    row = _find_patient(connection, parsed)
    if row is None:
        return _create_patient(connection, parsed)
    _take_demographics(connection, row.pk, parsed)
    return int(row.pk)


def _take_demographics(connection: Connection, patient_pk: int, parsed: ParsedInstance) -> None:
    values = {key: value for key, value in _demographics(parsed).items() if value}
    if values:
        connection.execute(update(_patient).where(_patient.c.pk == patient_pk).values(**values))


def _upsert_series(connection: Connection, parsed: ParsedInstance, study_pk: int, now: datetime) -> int:
    row = connection.execute(_SELECT_SERIES, {"uid": parsed.series_instance_uid}).first()
    if row is None:
        values = {
            "series_instance_uid": parsed.series_instance_uid,
            "study_pk": study_pk,
            "updated_at": now,
            **parsed.series,
        }
        series_pk = int(connection.execute(_INSERT_SERIES, values).scalar_one())
    elif row.study_pk != study_pk:
        raise InstanceProblem(Problem.CONFLICT, "its Series Instance UID is filed under another study")
    else:
        series_pk = int(row.pk)
        if changes := _changes(row, parsed.series):
            connection.execute(
                update(_series).where(_series.c.pk == series_pk).values(**changes, updated_at=now)
            )
    if parsed.request_attributes:
        connection.execute(delete(_requests).where(_requests.c.series_pk == series_pk))
        connection.execute(
            insert(_requests),
            [{"series_pk": series_pk, **item} for item in parsed.request_attributes],
        )
    return series_pk


def _prune_if_empty(connection: Connection, series_pk: int) -> None:
    """Remove a series (and then its study) that a replacement left without instances."""
    if connection.execute(select(func.count()).where(Instance.series_pk == series_pk)).scalar():
        return
    study_pk = connection.execute(select(Series.study_pk).where(Series.pk == series_pk)).scalar()
    connection.execute(delete(Series).where(Series.pk == series_pk))
    if (
        study_pk is not None
        and not connection.execute(select(func.count()).where(Series.study_pk == study_pk)).scalar()
    ):
        connection.execute(delete(Study).where(Study.pk == study_pk))
