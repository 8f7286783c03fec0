"""Deleting a study, a series or an instance from the index (DELETE, a Fovea extension of DICOMweb).

Why this shape:
- one transaction removes the instance rows (their metadata, frame tables and bulk-data rows cascade),
  schedules their blobs for deferred deletion (deferred_deletion.py: a read that looked an instance up
  just before keeps its bytes for the grace period) and removes the series, studies and patients left
  empty. A crash leaves either everything or nothing deleted, and never loses track of a blob.
- the emptiness checks are part of the DELETE statements (`NOT EXISTS`), so an instance stored
  concurrently into a series being emptied is never orphaned: on PostgreSQL one of the two transactions
  meets the foreign key and is tried again (ingest retries as well); on SQLite writers take turns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Select, delete, exists, select
from sqlalchemy.exc import IntegrityError

from app.dicomweb.scope import Scope
from app.store.infra.db import write_serializer_for
from app.store.tables import Instance, Patient, Series, Study
from app.store.upkeep.deferred_deletion import schedule_blob_deletions

_ATTEMPTS = 3  # a concurrent store into the series or study being emptied makes one attempt fail
_CHUNK = 1000  # primary keys per IN list: well below SQLite's and PostgreSQL's limits on parameters


@dataclass(frozen=True, slots=True)
class DeletedInstance:
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str

    @property
    def scope(self) -> Scope:
        return Scope(self.study_instance_uid, self.series_instance_uid, self.sop_instance_uid)


@dataclass(frozen=True, slots=True)
class Deletion:
    """What one deletion removed; no instances: nothing matched."""

    instances: tuple[DeletedInstance, ...] = ()
    blob_keys: tuple[str, ...] = ()  # scheduled for deletion once the grace period has passed
    delete_after: datetime | None = None

    def __bool__(self) -> bool:
        return bool(self.instances)

    @property
    def studies(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(item.study_instance_uid for item in self.instances))

    @property
    def series(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(item.series_instance_uid for item in self.instances))


def delete_scope(engine: Engine, scope: Scope, *, grace_s: float, now: datetime | None = None) -> Deletion:
    """Delete every instance of `scope` and whatever it leaves empty, in one transaction."""
    serialized_writes = write_serializer_for(engine)
    attempt = 1
    while True:
        try:
            with serialized_writes(), engine.begin() as connection:
                after = (now or datetime.now(UTC)) + timedelta(seconds=grace_s)
                return delete_in_transaction(connection, scope, after)
        except IntegrityError:
            if attempt >= _ATTEMPTS:
                raise
            attempt += 1


def delete_in_transaction(connection: Connection, scope: Scope, delete_after: datetime) -> Deletion:
    """`delete_scope`'s work in the caller's open transaction (for callers that delete as part of more)."""
    rows = connection.execute(_instances_of(scope)).all()
    if not rows:
        return Deletion()
    instance_pks = [row.pk for row in rows]
    keys = tuple(dict.fromkeys(key for row in rows for key in (row.blob_key, row.data_blob_key) if key))
    for chunk in _chunks(instance_pks):
        connection.execute(delete(Instance).where(Instance.pk.in_(chunk)))
    schedule_blob_deletions(connection, keys, delete_after)
    _prune_empty(
        connection,
        series_pks={row.series_pk for row in rows},
        study_pks={row.study_pk for row in rows},
        patient_pks={row.patient_pk for row in rows},
    )
    instances = tuple(
        DeletedInstance(row.study_instance_uid, row.series_instance_uid, row.sop_instance_uid) for row in rows
    )
    return Deletion(instances, keys, delete_after)


def _chunks(values: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _instances_of(scope: Scope) -> Select[*tuple[Any, ...]]:
    query = (
        select(
            Instance.pk,
            Instance.sop_instance_uid,
            Instance.blob_key,
            Instance.data_blob_key,
            Instance.series_pk,
            Series.series_instance_uid,
            Series.study_pk,
            Study.study_instance_uid,
            Study.patient_pk,
        )
        .join(Series, Series.pk == Instance.series_pk)
        .join(Study, Study.pk == Series.study_pk)
        .where(Study.study_instance_uid == scope.study_instance_uid)
        .order_by(Instance.pk)
        # PostgreSQL: a concurrent replacement of one of these instances (which locks its row too)
        # waits for this deletion, then finds no row and stores the instance afresh.
        .with_for_update(of=Instance)
    )
    if scope.series_instance_uid is not None:
        query = query.where(Series.series_instance_uid == scope.series_instance_uid)
    if scope.sop_instance_uid is not None:
        query = query.where(Instance.sop_instance_uid == scope.sop_instance_uid)
    return query


def _prune_empty(
    connection: Connection, *, series_pks: Iterable[int], study_pks: Iterable[int], patient_pks: Iterable[int]
) -> None:
    """Remove the series without instances, then the studies without series, then the patients without
    studies, among those the deleted instances belonged to."""
    connection.execute(
        delete(Series).where(
            Series.pk.in_(list(series_pks)), ~exists().where(Instance.series_pk == Series.pk)
        )
    )
    connection.execute(
        delete(Study).where(Study.pk.in_(list(study_pks)), ~exists().where(Series.study_pk == Study.pk))
    )
    connection.execute(
        delete(Patient).where(
            Patient.pk.in_(list(patient_pks)), ~exists().where(Study.patient_pk == Patient.pk)
        )
    )
