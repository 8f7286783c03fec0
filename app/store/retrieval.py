"""What WADO-RS needs from the index: stored metadata, in a stable order, for one scope.

Why here: these are the read-side queries on the index models; the HTTP layer never writes SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from app.store.index import Instance, InstanceMetadata, Series, Study


@dataclass(frozen=True, slots=True)
class Scope:
    """A study, a series of it, or one instance of that series (the narrower UIDs may be None)."""

    study_instance_uid: str
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None


def stored_metadata(connection: Connection, scope: Scope) -> list[bytes]:
    """The stored DICOM JSON of every instance in `scope`, by series then instance number.

    An empty list means nothing in the index matches the scope.
    """
    query = (
        select(InstanceMetadata.dicom_json)
        .join(Instance, Instance.pk == InstanceMetadata.instance_pk)
        .join(Series, Series.pk == Instance.series_pk)
        .join(Study, Study.pk == Series.study_pk)
        .where(Study.study_instance_uid == scope.study_instance_uid)
        .order_by(Series.series_number, Series.pk, Instance.instance_number, Instance.pk)
    )
    if scope.series_instance_uid is not None:
        query = query.where(Series.series_instance_uid == scope.series_instance_uid)
    if scope.sop_instance_uid is not None:
        query = query.where(Instance.sop_instance_uid == scope.sop_instance_uid)
    return [bytes(row) for row in connection.execute(query).scalars()]
