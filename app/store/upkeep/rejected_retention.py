"""Deleting rejected instances (FOVEA_REJECTED_DELETE_AFTER_DAYS): when the note is stored, or days later.

Why rows first and blobs later: the instance rows go in one transaction, their blobs are only scheduled
for deletion after the usual grace (app/store/upkeep/deferred_deletion.py), so a read that looked an instance
up before it was deleted still finds its bytes. A series, study or patient left empty goes with its
last instance. The rejection itself (`rejected_instance`) stays: a deleted rejected instance sent again
is still refused.

`delete_instances` is the one place here that removes instances; where a general deletion exists it
is meant to take its place.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, exists, select

from app.store.infra.db import write_serializer_for
from app.store.read.visibility import REJECTED
from app.store.tables import Instance, Patient, RejectedInstance, Series, Study
from app.store.upkeep.deferred_deletion import schedule_blob_deletion

log = logging.getLogger(__name__)
_BATCH = 500


def delete_instances(connection: Connection, instance_pks: Sequence[int], *, blobs_after: datetime) -> None:
    """Remove the instances `instance_pks` (and the series, studies and patients they leave empty) in the
    open transaction; their blobs are deleted after `blobs_after`."""
    if not instance_pks:
        return
    rows = connection.execute(
        select(Instance.pk, Instance.series_pk, Instance.blob_key, Instance.data_blob_key).where(
            Instance.pk.in_(instance_pks)
        )
    ).all()
    connection.execute(delete(Instance).where(Instance.pk.in_([row.pk for row in rows])))  # cascades
    for key in {key for row in rows for key in (row.blob_key, row.data_blob_key) if key}:
        schedule_blob_deletion(connection, key, blobs_after)
    series_pks = {row.series_pk for row in rows}
    study_pks = set(connection.execute(select(Series.study_pk).where(Series.pk.in_(series_pks))).scalars())
    connection.execute(
        delete(Series).where(Series.pk.in_(series_pks), ~exists().where(Instance.series_pk == Series.pk))
    )
    patient_pks = set(connection.execute(select(Study.patient_pk).where(Study.pk.in_(study_pks))).scalars())
    connection.execute(
        delete(Study).where(Study.pk.in_(study_pks), ~exists().where(Series.study_pk == Study.pk))
    )
    connection.execute(
        delete(Patient).where(Patient.pk.in_(patient_pks), ~exists().where(Study.patient_pk == Patient.pk))
    )


def delete_rejected(
    connection: Connection, *, rejected_before: datetime, blobs_after: datetime, limit: int | None = _BATCH
) -> tuple[str, ...]:
    """Delete the stored instances rejected before `rejected_before` (at most `limit`); their UIDs."""
    due = connection.execute(
        select(Instance.pk, Instance.sop_instance_uid)
        .join(RejectedInstance, RejectedInstance.sop_instance_uid == Instance.sop_instance_uid)
        .where(REJECTED, RejectedInstance.rejected_at <= rejected_before)
        .limit(limit)
    ).all()
    delete_instances(connection, [row.pk for row in due], blobs_after=blobs_after)
    return tuple(row.sop_instance_uid for row in due)


def purge_rejected(
    engine: Engine, *, after_days: float, blob_grace_s: float, now: datetime | None = None
) -> int:
    """Delete every stored instance rejected more than `after_days` ago, a batch per transaction; how many."""
    now = now or datetime.now(UTC)
    rejected_before = now - timedelta(days=after_days)
    serialized = write_serializer_for(engine)
    deleted = 0
    while True:
        with serialized(), engine.begin() as connection:
            uids = delete_rejected(
                connection, rejected_before=rejected_before, blobs_after=now + timedelta(seconds=blob_grace_s)
            )
        deleted += len(uids)
        for uid in uids:
            log.info("deleted rejected instance %s (FOVEA_REJECTED_DELETE_AFTER_DAYS=%g)", uid, after_days)
        if len(uids) < _BATCH:
            return deleted
