"""Ingest is all or nothing, with real failures injected into the real back ends.

Index failures come from a database trigger that aborts the transaction midway (after the instance row,
while the frame table is written); blob-store failures from a store that cannot write (a file where the
folder store needs a directory; a bucket that no longer exists). Nothing is mocked.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import text

from app.store.infra.blobs import FileBlobStore
from app.store.infra.s3_blobs import S3BlobStore
from app.store.write.ingest import Outcome
from app.store.write.parse import Problem
from tests.conftest import Backend
from tests.dicom_files import corpus_file, make_instance
from tests.integration.stow_helpers import index_counts, stored_bytes, stored_instance


def spool(backend: Backend, data: bytes, name: str = "part.dcm"):  # type: ignore[no-untyped-def]
    path = backend.blobs.spool_directory / name
    path.write_bytes(data)
    return path


@contextmanager
def failing_frame_inserts(backend: Backend) -> Iterator[None]:
    """Make every INSERT into the frame table abort its transaction, for the duration."""
    with backend.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER fail_frames BEFORE INSERT ON frame "
                    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION fovea_test_fail() RETURNS trigger AS "
                    "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER fail_frames BEFORE INSERT ON frame "
                    "FOR EACH ROW EXECUTE FUNCTION fovea_test_fail()"
                )
            )
    try:
        yield
    finally:
        with backend.engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                connection.execute(text("DROP TRIGGER fail_frames"))
            else:
                connection.execute(text("DROP TRIGGER fail_frames ON frame"))
                connection.execute(text("DROP FUNCTION fovea_test_fail()"))


@contextmanager
def unwritable_blob_store(backend: Backend) -> Iterator[None]:
    if isinstance(backend.blobs, FileBlobStore):
        blocker = backend.blobs.root / "instances"
        shutil.rmtree(blocker, ignore_errors=True)
        blocker.write_bytes(b"not a directory")  # every new key lives under instances/
        try:
            yield
        finally:
            blocker.unlink()
    else:
        assert isinstance(backend.blobs, S3BlobStore)
        client, bucket = backend.blobs.client, backend.blobs.bucket
        for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)
        try:
            yield
        finally:
            client.create_bucket(Bucket=bucket)


def test_index_failure_leaves_no_row_and_no_blob(backend: Backend) -> None:
    sop = generate_uid()
    with failing_frame_inserts(backend):
        result = backend.ingestor().ingest(spool(backend, make_instance(sop_uid=sop)))
    assert result.outcome is Outcome.FAILED
    assert result.problem is Problem.STORAGE_FAILURE
    assert result.sop_instance_uid == sop
    assert index_counts(backend).instances == 0
    assert index_counts(backend).studies == 0  # the study row of the same transaction is gone too
    assert backend.blob_keys() == set()
    assert backend.spool_files() == []


def test_failed_replacement_keeps_the_stored_instance(backend: Backend) -> None:
    sop = generate_uid()
    original = make_instance(sop_uid=sop, seed=1)
    assert backend.ingestor().ingest(spool(backend, original)).outcome is Outcome.STORED
    keys = backend.blob_keys()

    with failing_frame_inserts(backend):
        result = backend.ingestor().ingest(spool(backend, make_instance(sop_uid=sop, seed=2)))

    assert result.outcome is Outcome.FAILED
    assert stored_bytes(backend, sop) == original  # still indexed, still readable
    assert backend.blob_keys() == keys
    assert index_counts(backend).frames == 1


def test_deflated_instance_failure_removes_both_blobs(backend: Backend) -> None:
    deflated = corpus_file("image_dfl.dcm")
    with failing_frame_inserts(backend):
        result = backend.ingestor().ingest(spool(backend, deflated.path.read_bytes()))
    assert result.outcome is Outcome.FAILED
    assert backend.blob_keys() == set()
    assert backend.spool_files() == []


def test_deflated_instance_keeps_original_and_inflated_copy(backend: Backend) -> None:
    deflated = corpus_file("image_dfl.dcm")
    result = backend.ingestor().ingest(spool(backend, deflated.path.read_bytes()))
    assert result.outcome is Outcome.STORED
    instance = stored_instance(backend, deflated.sop_instance_uid)
    assert instance is not None and instance.data_blob_key is not None
    assert stored_bytes(backend, deflated.sop_instance_uid) == deflated.path.read_bytes()
    assert backend.blob_keys() == {instance.blob_key, instance.data_blob_key}


def test_blob_store_failure_indexes_nothing(backend: Backend) -> None:
    with unwritable_blob_store(backend):
        result = backend.ingestor().ingest(spool(backend, make_instance()))
    assert result.outcome is Outcome.FAILED
    assert result.problem is Problem.UNAVAILABLE  # the store is unusable: 0x0110, and STOW answers 503
    assert result.message.startswith("blob store unavailable: ")
    assert index_counts(backend).instances == 0
    assert backend.spool_files() == []


@pytest.mark.parametrize("policy_outcome", ["reject", "keep"])
def test_policies_never_write_a_blob_for_the_duplicate(backend: Backend, policy_outcome: str) -> None:
    from app.store.policies import DuplicatePolicy

    sop = generate_uid()
    assert backend.ingestor().ingest(spool(backend, make_instance(sop_uid=sop))).stored
    keys = backend.blob_keys()
    ingestor = backend.ingestor(DuplicatePolicy(policy_outcome))
    result = ingestor.ingest(spool(backend, make_instance(sop_uid=sop, seed=5)))
    assert result.outcome is (Outcome.FAILED if policy_outcome == "reject" else Outcome.KEPT_EXISTING)
    assert backend.blob_keys() == keys
    assert backend.spool_files() == []
