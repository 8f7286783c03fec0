"""The SQL index: patients, studies, series, instances, their frame tables and bulk-data locations.

Why: everything a later request needs is recorded here at ingest, parsed once: the QIDO matching and
return keys as columns (the rows of app/dicomweb/query_keys.py name them), extended query tag values,
the DICOM JSON ready to serve, and for every frame the byte ranges inside the stored blob. The schema
itself is created by alembic (migrations/); a test keeps these models and the migrations identical.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Primary keys are BIGINT on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
PrimaryKey = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UID = String(64)  # PS3.5 9.1: at most 64 characters; validated at ingest
# Text attributes are unbounded: real archives hold values longer than their VR allows, and refusing or
# truncating them at the index would lose data that the metadata keeps anyway.
LO = PN = CS = DA = TM = SH = String()
# Matching forms of PN values (app/dicomweb/person_names.py). PostgreSQL compares them in the "C"
# collation so that a B-tree index serves `LIKE 'prefix%'` whatever the database's own collation.
FoldedText = String().with_variant(String(collation="C"), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Patient(Base):
    """A patient, identified by Patient ID and Issuer of Patient ID (a study with no ID gets its own)."""

    __tablename__ = "patient"

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    patient_id: Mapped[str] = mapped_column(LO)
    issuer_of_patient_id: Mapped[str] = mapped_column(LO, default="")
    patient_name: Mapped[str] = mapped_column(PN, default="", index=True)
    patient_name_folded: Mapped[str] = mapped_column(FoldedText, default="", server_default="", index=True)
    patient_name_fuzzy: Mapped[str] = mapped_column(String, default="", server_default="")
    patient_birth_date: Mapped[str] = mapped_column(DA, default="")
    patient_sex: Mapped[str] = mapped_column(CS, default="")


class Study(Base):
    __tablename__ = "study"

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(UID, unique=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patient.pk"), index=True)
    study_date: Mapped[str] = mapped_column(DA, default="", index=True)
    study_time: Mapped[str] = mapped_column(TM, default="")
    accession_number: Mapped[str] = mapped_column(SH, default="", index=True)
    referring_physician_name: Mapped[str] = mapped_column(PN, default="")
    referring_physician_name_folded: Mapped[str] = mapped_column(FoldedText, default="", server_default="")
    referring_physician_name_fuzzy: Mapped[str] = mapped_column(String, default="", server_default="")
    study_id: Mapped[str] = mapped_column(SH, default="")
    study_description: Mapped[str] = mapped_column(LO, default="")
    timezone_offset_from_utc: Mapped[str] = mapped_column(SH, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Series(Base):
    __tablename__ = "series"

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    series_instance_uid: Mapped[str] = mapped_column(UID, unique=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("study.pk"), index=True)
    modality: Mapped[str] = mapped_column(CS, default="", index=True)
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_description: Mapped[str] = mapped_column(LO, default="")
    performed_procedure_step_start_date: Mapped[str] = mapped_column(DA, default="")
    performed_procedure_step_start_time: Mapped[str] = mapped_column(TM, default="")
    timezone_offset_from_utc: Mapped[str] = mapped_column(SH, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RequestAttribute(Base):
    """One item of the series' Request Attributes Sequence (0040,0275), for QIDO sequence matching."""

    __tablename__ = "request_attribute"

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    series_pk: Mapped[int] = mapped_column(ForeignKey("series.pk", ondelete="CASCADE"), index=True)
    scheduled_procedure_step_id: Mapped[str] = mapped_column(SH, default="")
    requested_procedure_id: Mapped[str] = mapped_column(SH, default="")


class Instance(Base):
    __tablename__ = "instance"

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(UID, unique=True)
    series_pk: Mapped[int] = mapped_column(ForeignKey("series.pk"), index=True)
    sop_class_uid: Mapped[str] = mapped_column(UID, index=True)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    timezone_offset_from_utc: Mapped[str] = mapped_column(SH, default="")
    transfer_syntax_uid: Mapped[str] = mapped_column(UID)
    # Image Pixel module, when the instance has pixel data (None otherwise).
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    bits_allocated: Mapped[int | None] = mapped_column(SmallInteger)
    bits_stored: Mapped[int | None] = mapped_column(SmallInteger)
    high_bit: Mapped[int | None] = mapped_column(SmallInteger)
    pixel_representation: Mapped[int | None] = mapped_column(SmallInteger)
    samples_per_pixel: Mapped[int | None] = mapped_column(SmallInteger)
    photometric_interpretation: Mapped[str | None] = mapped_column(CS)
    planar_configuration: Mapped[int | None] = mapped_column(SmallInteger)
    number_of_frames: Mapped[int | None] = mapped_column(Integer)
    pixel_data_tag: Mapped[int | None] = mapped_column(BigInteger)  # 7FE00010, 7FE00008 or 7FE00009
    lossy_image_compression: Mapped[str] = mapped_column(String(2), default="")
    # The blob as received, and (when different) the blob frame/bulk-data offsets point into: a Deflated
    # Explicit VR Little Endian instance is indexed through an inflated copy.
    blob_key: Mapped[str] = mapped_column(String(255), index=True)
    data_blob_key: Mapped[str | None] = mapped_column(String(255), index=True)
    blob_size: Mapped[int] = mapped_column(BigInteger)
    # SHA-256 (hex) of the blob as stored, taken at ingest: evidence of integrity for fixity checks.
    # None for instances stored before Fovea recorded it.
    sha256: Mapped[str | None] = mapped_column(String(64))
    # What the last fixity check found wrong with the stored file ("corrupt", "missing"; None: nothing,
    # or never checked), and when it ran (app/store/upkeep/verification.py). A flagged instance is not served.
    fixity_problem: Mapped[str | None] = mapped_column(String(16))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # The STOW-RS request or import run that stored it: a UID repeated within one batch is refused.
    batch_id: Mapped[str | None] = mapped_column(String(32))
    # Named by an IHE IOCM rejection note (`RejectedInstance`): hidden from QIDO-RS and WADO-RS. A copy
    # of the rejection on the row itself, so the filters of every search and read cost no join.
    rejected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InstanceMetadata(Base):
    """The instance's DICOM JSON, stored encoded and ready to serve (BulkDataURIs relative)."""

    __tablename__ = "instance_metadata"

    instance_pk: Mapped[int] = mapped_column(ForeignKey("instance.pk", ondelete="CASCADE"), primary_key=True)
    dicom_json: Mapped[bytes] = mapped_column(LargeBinary)


class FrameFragmentRow(Base):
    """One fragment of one frame: where its bytes are in the data blob (frame 0: a whole video stream)."""

    __tablename__ = "frame"

    instance_pk: Mapped[int] = mapped_column(ForeignKey("instance.pk", ondelete="CASCADE"), primary_key=True)
    frame_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    fragment_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(BigInteger)
    bit_offset: Mapped[int] = mapped_column(SmallInteger, default=0)


class BulkDataRow(Base):
    """Where a value that the metadata replaced by a BulkDataURI lives in the data blob."""

    __tablename__ = "bulkdata"

    instance_pk: Mapped[int] = mapped_column(ForeignKey("instance.pk", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(255), primary_key=True)
    vr: Mapped[str] = mapped_column(String(2))
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(BigInteger)
    little_endian: Mapped[bool] = mapped_column(Boolean, default=True)


class BlobDeletion(Base):
    """A blob no index row refers to any more, kept until `delete_after` for the reads that may still hold it.

    Why a table: the row that unlinks a blob (a replacement, a deletion) and this one commit together, so
    a crash can never lose track of a blob nor remove one a reader was promised (deferred_deletion.py).
    """

    __tablename__ = "blob_deletion"

    blob_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    delete_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class RejectedInstance(Base):
    """A SOP Instance UID an IHE IOCM rejection note rejected (app/store/write/rejection.py).

    Why a table of its own: the rejection outlives the instance's row (a rejected instance deleted by the
    retention policy, or one not received yet must still be refused when it is sent again), and says
    why (the note's code) and when (for deletion after a number of days).
    """

    __tablename__ = "rejected_instance"

    sop_instance_uid: Mapped[str] = mapped_column(UID, primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(UID, index=True)
    series_instance_uid: Mapped[str] = mapped_column(UID)
    reason_code: Mapped[str] = mapped_column(String(16))  # Code Value of the note's Concept Name (DCM)
    note_sop_instance_uid: Mapped[str] = mapped_column(UID)
    rejected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AuditEventRow(Base):
    """One audited request (app/audit/events.py); its studies are also rows of `audit_event_studies`."""

    __tablename__ = "audit_events"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    action: Mapped[str] = mapped_column(String(32))
    principal_kind: Mapped[str] = mapped_column(String(16))
    principal: Mapped[str] = mapped_column(String(255), index=True)
    username: Mapped[str | None] = mapped_column(String(255), index=True)
    client: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(255))
    status: Mapped[int] = mapped_column(Integer)
    bytes_in: Mapped[int] = mapped_column(BigInteger)
    bytes_out: Mapped[int] = mapped_column(BigInteger)
    # JSON arrays of UIDs, as recorded (the studies again here, so reading an event needs no join).
    study_uids: Mapped[str] = mapped_column(Text)
    series_uids: Mapped[str] = mapped_column(Text)
    instance_uids: Mapped[str] = mapped_column(Text)


class AuditEventStudy(Base):
    """A study an audited request touched: "what happened to study X" is one index probe."""

    __tablename__ = "audit_event_studies"

    event_id: Mapped[str] = mapped_column(ForeignKey("audit_events.id", ondelete="CASCADE"), primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(UID, primary_key=True, index=True)


class AuditEventFile(Base):
    """A file an audited export wrote, with its SHA-256: what left the archive, provably."""

    __tablename__ = "audit_event_files"

    event_id: Mapped[str] = mapped_column(ForeignKey("audit_events.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)


Index("ix_patient_identity", Patient.patient_id, Patient.issuer_of_patient_id)
# ModalitiesInStudy matching: "has this study a series of modality M" is one index probe per study.
Index("ix_series_study_modality", Series.study_pk, Series.modality)
# Only the rejected rows (few): "is any stored instance rejected?" is one probe, so the searches skip the
# per-study and per-series visibility checks in an archive that has none.
Index(
    "ix_instance_rejected",
    Instance.series_pk,
    sqlite_where=Instance.rejected == true(),
    postgresql_where=Instance.rejected == true(),
)


class QueryTag(Base):
    """An extended query tag: an attribute an administrator declared matchable (app/store/query_tags.py).

    `tag` is the attribute's tag as QIDO-RS names it; for a private attribute, the element's low byte
    counts within the block `private_creator` reserves in each data set. Searches use it once `state`
    is "ready", after the back-fill of the instances stored before it was declared.
    """

    __tablename__ = "query_tag"

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    tag: Mapped[int] = mapped_column(BigInteger, unique=True)
    keyword: Mapped[str] = mapped_column(String(64), default="")
    private_creator: Mapped[str] = mapped_column(String(64), default="")
    vr: Mapped[str] = mapped_column(String(2))
    level: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16))
    instances_done: Mapped[int] = mapped_column(BigInteger, default=0)
    instances_total: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QueryTagValue(Base):
    """One value of an extended query tag in one instance (a multi-valued attribute has several rows).

    The instance's series and study are kept beside it so that a study or series search probes this
    table's index once rather than joining through every instance.
    """

    __tablename__ = "query_tag_value"

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    query_tag_pk: Mapped[int] = mapped_column(ForeignKey("query_tag.pk", ondelete="CASCADE"))
    instance_pk: Mapped[int] = mapped_column(ForeignKey("instance.pk", ondelete="CASCADE"), index=True)
    series_pk: Mapped[int] = mapped_column(BigInteger)
    study_pk: Mapped[int] = mapped_column(BigInteger)
    text_value: Mapped[str | None] = mapped_column(FoldedText, nullable=True)
    number_value: Mapped[float | None] = mapped_column(Double, nullable=True)


Index("ix_query_tag_value_text", QueryTagValue.query_tag_pk, QueryTagValue.text_value)
Index("ix_query_tag_value_number", QueryTagValue.query_tag_pk, QueryTagValue.number_value)


class ApiKey(Base):
    """An API key for a machine client (app/security/api_keys.py): only a salted hash of the key is kept.

    `key_id` is the key's non-secret prefix, the lookup column; `revoked_at` set means refused.
    """

    __tablename__ = "api_key"

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary)
    scopes: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
