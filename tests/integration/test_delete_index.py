"""Deleting from the index (store/upkeep/deletion.py) while instances are stored into the same series:
whichever wins each race, the index stays consistent, nothing stored is lost track of, and no empty series,
study or patient is left behind."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import exists, select

from app.dicomweb.scope import Scope
from app.store.tables import BlobDeletion, Instance, Patient, Series, Study
from app.store.upkeep.deletion import delete_scope
from app.store.write.ingest import Outcome
from tests.conftest import Backend
from tests.dicom_files import make_instance

pytestmark = pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)

STORES = 16


def test_nothing_matched_deletes_nothing(backend: Backend, tmp_path: Path) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    path = tmp_path / "one.dcm"
    path.write_bytes(make_instance(study_uid=study, series_uid=series, sop_uid=sop))
    assert backend.ingestor().ingest(path).outcome is Outcome.STORED

    assert not delete_scope(backend.engine, Scope(generate_uid()), grace_s=60)
    assert not delete_scope(backend.engine, Scope(generate_uid(), series), grace_s=60)  # not its study
    assert not delete_scope(backend.engine, Scope(study, series, generate_uid()), grace_s=60)
    with backend.engine.connect() as connection:
        assert connection.execute(select(Instance.sop_instance_uid)).scalars().all() == [sop]
        assert connection.execute(select(BlobDeletion.blob_key)).first() is None

    deletion = delete_scope(backend.engine, Scope(study, series, sop), grace_s=60)
    assert [item.sop_instance_uid for item in deletion.instances] == [sop]
    assert (deletion.studies, deletion.series) == ((study,), (series,))


def test_storing_into_a_series_while_it_is_deleted_leaves_the_index_consistent(
    backend: Backend, tmp_path: Path
) -> None:
    study, series = generate_uid(), generate_uid()
    ingestor = backend.ingestor()
    outcomes: list[Outcome] = []
    deleted: list[str] = []
    storing_done = threading.Event()

    def store() -> None:
        try:
            for number in range(STORES):
                path = tmp_path / f"{number}.dcm"
                path.write_bytes(make_instance(study_uid=study, series_uid=series, seed=number))
                outcomes.append(ingestor.ingest(path).outcome)
        finally:
            storing_done.set()

    storer = threading.Thread(target=store)
    storer.start()
    while not storing_done.is_set():
        deletion = delete_scope(backend.engine, Scope(study, series), grace_s=300)
        deleted.extend(item.sop_instance_uid for item in deletion.instances)
    storer.join()

    assert outcomes == [Outcome.STORED] * STORES
    assert deleted  # the deletions ran while instances were being stored
    with backend.engine.connect() as connection:
        kept = connection.execute(select(Instance.sop_instance_uid)).scalars().all()
        assert len(kept) + len(deleted) == STORES  # each stored instance is either kept or deleted
        # no series, study or patient without what it holds
        assert (
            connection.execute(
                select(Series.pk).where(~exists().where(Instance.series_pk == Series.pk))
            ).first()
            is None
        )
        assert (
            connection.execute(select(Study.pk).where(~exists().where(Series.study_pk == Study.pk))).first()
            is None
        )
        assert (
            connection.execute(
                select(Patient.pk).where(~exists().where(Study.patient_pk == Patient.pk))
            ).first()
            is None
        )
        referenced = set(connection.execute(select(Instance.blob_key)).scalars())
        pending = set(connection.execute(select(BlobDeletion.blob_key)).scalars())
    assert referenced | pending == backend.blob_keys()  # every stored file is accounted for
    assert not referenced & pending
