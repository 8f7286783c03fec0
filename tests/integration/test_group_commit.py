"""Group commit: instances indexed together share one transaction, yet each succeeds or fails alone.

Failures are real: a database trigger that aborts the index write of one chosen instance, a patient
that contradicts its study's, a SOP Instance UID repeated in the request. Commits are counted with
SQLAlchemy's `commit` event on the real engine.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import Connection, event, func, select, text
from sqlalchemy.exc import IntegrityError

from app.store.infra.db import write_serializer_for
from app.store.tables import Instance
from app.store.write.group_commit import ATTEMPTS, GroupCommit, IndexWrite
from app.store.write.ingest import Outcome
from app.store.write.parse import Problem
from tests.conftest import Backend
from tests.dicom_files import make_instance
from tests.integration.stow_helpers import index_counts, stored_bytes


def spool(backend: Backend, data: bytes) -> Path:
    path = backend.blobs.spool_directory / f"{generate_uid()}.part"
    path.write_bytes(data)
    return path


@contextmanager
def counted_commits(backend: Backend) -> Iterator[list[int]]:
    commits: list[int] = []

    def count(_connection: Connection) -> None:
        commits.append(1)

    event.listen(backend.engine, "commit", count)
    try:
        yield commits
    finally:
        event.remove(backend.engine, "commit", count)


@contextmanager
def failing_instance_insert(backend: Backend, sop_instance_uid: str) -> Iterator[None]:
    """Make the index write of one SOP Instance UID abort, and only that one."""
    with backend.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER fail_one BEFORE INSERT ON instance "
                    f"WHEN NEW.sop_instance_uid = '{sop_instance_uid}' "
                    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION fovea_test_fail_one() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.sop_instance_uid = '{sop_instance_uid}' THEN RAISE EXCEPTION 'injected'; "
                    "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER fail_one BEFORE INSERT ON instance "
                    "FOR EACH ROW EXECUTE FUNCTION fovea_test_fail_one()"
                )
            )
    try:
        yield
    finally:
        with backend.engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                connection.execute(text("DROP TRIGGER fail_one"))
            else:
                connection.execute(text("DROP TRIGGER fail_one ON instance"))
                connection.execute(text("DROP FUNCTION fovea_test_fail_one()"))


def test_one_request_is_one_commit_and_each_instance_fails_alone(backend: Backend) -> None:
    study = generate_uid()
    good = [generate_uid() for _ in range(3)]
    broken, repeated = generate_uid(), good[0]
    files = [
        make_instance(study_uid=study, sop_uid=good[0]),
        make_instance(study_uid=study, sop_uid=broken),  # its index write aborts
        make_instance(study_uid=study, sop_uid=good[1], patient_name="Other^Name"),  # contradicts
        make_instance(study_uid=study, sop_uid=repeated, seed=3),  # repeated in the batch
        make_instance(study_uid=study, sop_uid=good[2]),
    ]
    paths = [spool(backend, data) for data in files]
    with failing_instance_insert(backend, broken), counted_commits(backend) as commits:
        results = backend.ingestor().ingest_many(paths, batch_id="request-1")

    assert [r.outcome for r in results] == [
        Outcome.STORED,
        Outcome.FAILED,
        Outcome.FAILED,
        Outcome.FAILED,
        Outcome.STORED,
    ]
    assert results[1].problem is Problem.STORAGE_FAILURE
    assert results[2].problem is Problem.PATIENT_MISMATCH
    assert results[3].problem is Problem.DUPLICATE
    assert len(commits) == 1  # the two stored instances committed together
    assert index_counts(backend).instances == 2
    assert stored_bytes(backend, good[0]) == files[0]
    assert stored_bytes(backend, good[2]) == files[4]
    assert len(backend.blob_keys()) == 2  # the failed instances' blobs were deleted
    assert backend.spool_files() == []


def test_a_failed_shared_commit_stores_each_write_alone(backend: Backend) -> None:
    """A failure at the shared commit itself (here SQLite's deferred foreign-key check, which no
    savepoint sees) makes each write that had succeeded run again in a transaction of its own: the
    faulty one fails alone, the others are stored."""
    if backend.engine.dialect.name != "sqlite":
        pytest.skip("deferred foreign keys are switched on per transaction only in SQLite")
    committer = GroupCommit(backend.engine, write_serializer_for(backend.engine), lambda _c, _e: None)
    with backend.engine.begin() as connection:
        connection.execute(text("CREATE TABLE test_marker (name TEXT)"))

    def dangling_frame(connection: Connection) -> str:
        connection.execute(text("PRAGMA defer_foreign_keys = ON"))  # checked only at COMMIT
        connection.execute(
            text(
                'INSERT INTO frame (instance_pk, frame_number, fragment_index, "offset", length, '
                "bit_offset) VALUES (999999, 1, 0, 0, 1, 0)"
            )
        )
        return "dangling"

    def marker(name: str) -> Callable[[Connection], str]:
        def write(connection: Connection) -> str:
            connection.execute(text("INSERT INTO test_marker VALUES (:name)"), {"name": name})
            return name

        return write

    writes = [IndexWrite(marker("first")), IndexWrite(dangling_frame), IndexWrite(marker("last"))]
    try:
        with counted_commits(backend) as commits:
            committer.run(writes)
        with backend.engine.connect() as connection:
            stored = set(connection.execute(text("SELECT name FROM test_marker")).scalars())
    finally:
        with backend.engine.begin() as connection:
            connection.execute(text("DROP TABLE test_marker"))
    assert stored == {"first", "last"}
    assert [w.result for w in writes] == ["first", None, "last"]
    assert isinstance(writes[1].error, IntegrityError)
    assert writes[0].error is None and writes[2].error is None
    assert len(commits) == 1 + 2 + ATTEMPTS  # shared, then each write alone (the faulty one retried)
    assert all(w.done for w in writes)


def test_concurrent_single_instance_stores_share_commits(backend: Backend) -> None:
    ingestor = backend.ingestor()
    study = generate_uid()
    sops = [generate_uid() for _ in range(12)]
    paths = [
        spool(backend, make_instance(study_uid=study, sop_uid=sop, seed=n)) for n, sop in enumerate(sops)
    ]
    start = threading.Barrier(len(paths))
    results: dict[str, Outcome] = {}

    def store(path: Path) -> None:
        start.wait()
        result = ingestor.ingest(path, batch_id=uuid.uuid4().hex)
        results[result.sop_instance_uid] = result.outcome

    with counted_commits(backend) as commits:
        threads = [threading.Thread(target=store, args=(path,)) for path in paths]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert results == dict.fromkeys(sops, Outcome.STORED)
    assert 1 <= len(commits) <= len(sops)
    with backend.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Instance)).scalar() == len(sops)
