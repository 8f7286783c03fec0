"""What the de-identified rendition needs from the index: a study's members in one statement.

Why one statement per study: replacement UIDs are one-way, so a request naming a replacement series or
instance is resolved by mapping every original of its study forward (app/lifecycle/rendition.py); the
study's rows, with what decides whether an instance may be shown, come back at once. Burned In
Annotation is not an index column: it is read from the stored DICOM JSON, parsed only where present.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from sqlalchemy import Connection, select

from app.store.read.visibility import VISIBLE
from app.store.tables import Instance, InstanceMetadata, Series, Study

BURNED_IN_ANNOTATION = "00280301"
_BURNED_IN_KEY = b'"' + BURNED_IN_ANNOTATION.encode() + b'"'


@dataclass(frozen=True, slots=True)
class StudyMember:
    """One visible instance of a study, in series then instance order."""

    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    burned_in_annotation: str  # "YES", "NO", or "" when the instance does not say
    has_pixels: bool


def study_members(connection: Connection, study_instance_uid: str) -> list[StudyMember]:
    """The visible instances of a study (empty: no such study)."""
    query = (
        select(
            Series.series_instance_uid,
            Instance.sop_instance_uid,
            Instance.sop_class_uid,
            Instance.number_of_frames,
            InstanceMetadata.dicom_json,
        )
        .select_from(Instance)
        .join(Series, Series.pk == Instance.series_pk)
        .join(Study, Study.pk == Series.study_pk)
        .join(InstanceMetadata, InstanceMetadata.instance_pk == Instance.pk)
        .where(Study.study_instance_uid == study_instance_uid, VISIBLE)
        .order_by(Series.series_number, Series.pk, Instance.instance_number, Instance.pk)
    )
    return [
        StudyMember(
            row.series_instance_uid,
            row.sop_instance_uid,
            row.sop_class_uid,
            _burned_in_annotation(bytes(row.dicom_json)),
            row.number_of_frames is not None,
        )
        for row in connection.execute(query)
    ]


def _burned_in_annotation(stored: bytes) -> str:
    if _BURNED_IN_KEY not in stored:  # most instances: no parse at all
        return ""
    values = orjson.loads(stored).get(BURNED_IN_ANNOTATION, {}).get("Value") or [""]
    return str(values[0] or "").strip().upper()


def study_key(connection: Connection, study_instance_uid: str) -> int | None:
    """The index key of a stored study (a de-identified share token's hint), None when not stored."""
    query = select(Study.pk).where(Study.study_instance_uid == study_instance_uid)
    return connection.execute(query).scalar_one_or_none()


def study_uid_of_key(connection: Connection, key: int) -> str | None:
    return connection.execute(select(Study.study_instance_uid).where(Study.pk == key)).scalar_one_or_none()


def study_instance_uids(connection: Connection) -> list[str]:
    """Every stored study's UID (to find the original of a replacement study UID)."""
    return list(connection.execute(select(Study.study_instance_uid)).scalars())
