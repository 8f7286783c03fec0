"""The SHA-256 of each stored file is in the index: as received, as converted, and absent for older rows."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from app.store.infra.blobs import FileBlobStore
from app.store.infra.db import alembic_config, create_index_engine, migrate
from app.store.policies import DuplicatePolicy
from app.store.tables import Instance
from app.store.write.ingest import Ingestor, Outcome
from app.store.write.storage_policy import StoragePolicy
from tests.conftest import Backend
from tests.dicom_files import make_instance

DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"


def ingest(ingestor: Ingestor, data: bytes) -> None:
    path = ingestor.blobs.spool_directory / f"{uuid.uuid4().hex}.dcm"
    path.write_bytes(data)
    assert ingestor.ingest(path).outcome is Outcome.STORED


def stored_digest_and_blob(backend: Backend) -> tuple[str | None, bytes]:
    with Session(backend.engine) as session:
        row = session.scalars(select(Instance)).one()
        return row.sha256, backend.blobs.read_range(row.blob_key, 0, row.blob_size)


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)
def test_the_digest_is_that_of_the_file_received_and_stored(backend: Backend) -> None:
    sent = make_instance(frames=2, seed=5)
    ingest(backend.ingestor(), sent)
    digest, blob = stored_digest_and_blob(backend)
    assert digest == hashlib.sha256(blob).hexdigest() == hashlib.sha256(sent).hexdigest()


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)
def test_a_converted_instance_has_the_digest_of_the_file_stored(backend: Backend) -> None:
    sent = make_instance(frames=2, seed=6)
    policy = StoragePolicy(storage_syntax=DEFLATED_FRAMES)
    ingest(Ingestor(backend.engine, backend.blobs, DuplicatePolicy.REPLACE, policy), sent)
    digest, blob = stored_digest_and_blob(backend)
    assert digest == hashlib.sha256(blob).hexdigest()
    assert digest != hashlib.sha256(sent).hexdigest()  # the stored file is the converted one


def test_migration_0005_adds_the_audit_tables_and_leaves_older_instances_without_a_digest(
    tmp_path: Path,
) -> None:
    engine = create_index_engine(f"sqlite:///{tmp_path}/index.db")
    migrate(engine)
    ingest(Ingestor(engine, FileBlobStore(tmp_path / "blobs"), DuplicatePolicy.REPLACE), make_instance())
    command.downgrade(alembic_config(engine), "0002")  # as an index from before the audit trail
    assert "sha256" not in {column["name"] for column in inspect(engine).get_columns("instance")}
    assert "audit_events" not in inspect(engine).get_table_names()

    migrate(engine)

    with engine.connect() as connection:
        assert connection.execute(text("SELECT sha256 FROM instance")).scalars().all() == [None]
    assert {"audit_events", "audit_event_studies"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_a_digest_taken_while_spooling_is_recorded_as_given(backend: Backend) -> None:
    """The STOW-RS spooler hashes each part as it writes it; ingest trusts that digest rather than
    reading the file again (and one taken of other bytes would be recorded as it came)."""
    sent = make_instance(frames=2, seed=7)
    path = backend.blobs.spool_directory / f"{uuid.uuid4().hex}.dcm"
    path.write_bytes(sent)
    given = hashlib.sha256(b"another file").hexdigest()
    (result,) = backend.ingestor().ingest_many([path], digests={path: given})
    assert result.outcome is Outcome.STORED
    digest, blob = stored_digest_and_blob(backend)
    assert digest == given
    assert blob == sent
