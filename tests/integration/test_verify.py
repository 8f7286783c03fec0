"""Fixity checks find a flipped byte, a truncated file, a missing file and an orphan, and flag them in the
index; intact files are left alone; on SQLite + folder and PostgreSQL + S3."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import update

from app.store.infra.blobs import new_blob_key
from app.store.tables import Instance
from app.store.tools.verify_run import (
    BytesRead,
    InstanceChecked,
    VerifyEvent,
    VerifyFinished,
    VerifyStarted,
    run_verify,
)
from app.store.upkeep.verification import Selection, Tally
from app.store.write.ingest import Outcome
from tests.conftest import Backend
from tests.dicom_files import make_instance
from tests.integration.fixity_helpers import (
    blob_key_of,
    fixity_state,
    flip_byte,
    ingest,
    overwrite_blob,
    read_blob,
    remove,
    truncate,
)

BOTH = pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)


def verify(backend: Backend, selection: Selection | None = None) -> tuple[Tally, list[dict[str, object]]]:
    lines: list[str] = []
    events: list[VerifyEvent] = []
    tally = run_verify(
        backend.engine,
        backend.blobs,
        selection or Selection(),
        orphan_grace_s=0,
        emit=lines.append,
        on_event=events.append,
    )
    # What the progress bar is drawn from agrees with the tally.
    assert isinstance(events[0], VerifyStarted)
    assert events[-1] == VerifyFinished(instances=tally.checked, bytes_read=tally.bytes_read)
    assert sum(event.count for event in events if isinstance(event, BytesRead)) == tally.bytes_read
    checked = [event.done for event in events if isinstance(event, InstanceChecked)]
    assert checked == list(range(1, len(checked) + 1))
    return tally, [orjson.loads(line) for line in lines]


def store_study(backend: Backend, count: int) -> tuple[str, list[str]]:
    study: str = generate_uid()
    sops: list[str] = [generate_uid() for _ in range(count)]
    ingestor = backend.ingestor()
    for number, sop in enumerate(sops):
        ingest(ingestor, make_instance(study_uid=study, sop_uid=sop, seed=number))
    return study, sops


@BOTH
def test_a_flipped_byte_a_truncated_file_a_missing_file_and_an_orphan_are_found_and_flagged(
    backend: Backend, tmp_path: Path
) -> None:
    study, (flipped, truncated, missing, good) = store_study(backend, 4)
    good_bytes = read_blob(backend, blob_key_of(backend, good))
    flipped_size = len(flip_byte(backend, blob_key_of(backend, flipped), 3000))  # in the pixel data
    truncate(backend, blob_key_of(backend, truncated), 1000)
    remove(backend, blob_key_of(backend, missing))
    orphan_file = tmp_path / "orphan.dcm"
    orphan_file.write_bytes(b"o" * 321)
    orphan = new_blob_key()
    backend.blobs.put_file(orphan, orphan_file)

    tally, lines = verify(backend)

    *problems, summary = lines
    assert sorted(str(line["status"]) for line in problems) == ["corrupt", "corrupt", "missing", "orphaned"]
    corrupt = {line["instance"]: line for line in problems if line["status"] == "corrupt"}
    assert set(corrupt) == {flipped, truncated}
    assert corrupt[flipped]["reason"] == "SHA-256 differs from the one recorded at ingest"
    assert corrupt[flipped]["sha256"] != corrupt[flipped]["recorded_sha256"]
    assert corrupt[truncated]["size"] == 1000
    assert corrupt[truncated]["recorded_size"] != 1000
    [missing_line] = [line for line in problems if line["status"] == "missing"]
    assert missing_line["instance"] == missing and missing_line["study"] == study
    [orphan_line] = [line for line in problems if line["status"] == "orphaned"]
    assert orphan_line["blob"] == orphan and orphan_line["size"] == 321
    assert summary == {
        "status": "summary",
        "checked": 4,
        "bytes_read": len(good_bytes) + flipped_size,  # a wrong size is found without reading
        "intact": 1,
        "corrupt": 2,
        "missing": 1,
        "unreadable": 0,
        "orphaned": 1,
        "digests_recorded": 0,
        "problems": 4,
    }
    assert tally.problems == 4

    assert fixity_state(backend, flipped) == ("corrupt", True)
    assert fixity_state(backend, truncated) == ("corrupt", True)
    assert fixity_state(backend, missing) == ("missing", True)
    assert fixity_state(backend, good) == (None, True)
    assert read_blob(backend, blob_key_of(backend, good)) == good_bytes  # left alone
    assert orphan in {blob.key for blob in backend.blobs.iter_blobs()}  # reported; `fovea gc` removes


@BOTH
def test_a_restored_file_clears_its_flag(backend: Backend) -> None:
    _study, (sop,) = store_study(backend, 1)
    key = blob_key_of(backend, sop)
    original = flip_byte(backend, key, 200)
    verify(backend)
    assert fixity_state(backend, sop) == ("corrupt", True)

    overwrite_blob(backend, key, original)  # restored from a backup
    tally, lines = verify(backend)
    assert tally.problems == 0
    assert lines[-1]["intact"] == 1
    assert fixity_state(backend, sop) == (None, True)


@BOTH
def test_storing_a_flagged_instance_again_replaces_it_unflagged(backend: Backend) -> None:
    study, (sop,) = store_study(backend, 1)
    remove(backend, blob_key_of(backend, sop))
    verify(backend)
    assert fixity_state(backend, sop) == ("missing", True)

    ingest(backend.ingestor(), make_instance(study_uid=study, sop_uid=sop, seed=0), Outcome.REPLACED)
    assert fixity_state(backend, sop) == (None, False)


def test_only_the_selected_study_is_read_and_orphans_are_not_judged(backend: Backend) -> None:
    damaged_study, (damaged,) = store_study(backend, 1)
    kept_study, kept = store_study(backend, 2)
    remove(backend, blob_key_of(backend, damaged))

    tally, lines = verify(backend, Selection(study_instance_uid=kept_study))
    assert tally.problems == 0 and tally.checked == 2
    assert fixity_state(backend, damaged) == (None, False)  # not read
    assert all(fixity_state(backend, sop) == (None, True) for sop in kept)

    tally, lines = verify(backend, Selection(study_instance_uid=damaged_study))
    assert [line["status"] for line in lines] == ["missing", "summary"]


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_since_selects_instances_stored_from_that_time(backend: Backend) -> None:
    _study, (old, new) = store_study(backend, 2)
    with backend.engine.begin() as connection:
        a_week_ago = datetime.now(UTC) - timedelta(days=7)
        connection.execute(
            update(Instance).where(Instance.sop_instance_uid == old).values(created_at=a_week_ago)
        )
    tally, _lines = verify(backend, Selection(since=datetime.now(UTC) - timedelta(days=1)))
    assert tally.checked == 1
    assert fixity_state(backend, new) == (None, True)
    assert fixity_state(backend, old) == (None, False)


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_a_sample_reads_each_instance_with_the_chance_given(backend: Backend) -> None:
    from app.store.upkeep.verification import iter_selected

    store_study(backend, 6)
    draws = iter([0.5, 0.005, 0.9, 0.001, 0.3, 0.2])  # below 0.01: chosen at 1%
    pages = list(iter_selected(backend.engine, Selection(sample_percent=1), chance=lambda: next(draws)))
    assert [len(page) for page in pages] == [2]
    [whole] = iter_selected(backend.engine, Selection(sample_percent=100))
    assert len(whole) == 6


@pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)
def test_an_instance_stored_without_a_digest_gets_one_recorded(backend: Backend) -> None:
    _study, (sop,) = store_study(backend, 1)
    with backend.engine.begin() as connection:
        connection.execute(update(Instance).values(sha256=None))  # as stored before digests were kept
    tally, lines = verify(backend)
    assert tally.problems == 0 and lines[-1]["digests_recorded"] == 1
    with backend.engine.connect() as connection:
        recorded = connection.execute(
            Instance.__table__.select().with_only_columns(Instance.sha256)
        ).scalar_one()
    assert recorded == hashlib.sha256(read_blob(backend, blob_key_of(backend, sop))).hexdigest()


def test_migration_0008_adds_the_fixity_columns_and_leaves_instances_unverified(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import inspect, text

    from app.store.infra.blobs import FileBlobStore
    from app.store.infra.db import alembic_config, create_index_engine, migrate
    from app.store.policies import DuplicatePolicy
    from app.store.write.ingest import Ingestor

    engine = create_index_engine(f"sqlite:///{tmp_path}/index.db")
    migrate(engine)
    ingest(Ingestor(engine, FileBlobStore(tmp_path / "blobs"), DuplicatePolicy.REPLACE), make_instance())
    command.downgrade(alembic_config(engine), "0005")
    columns = {column["name"] for column in inspect(engine).get_columns("instance")}
    assert {"fixity_problem", "verified_at"}.isdisjoint(columns)

    migrate(engine)

    with engine.connect() as connection:
        rows = connection.execute(text("SELECT fixity_problem, verified_at FROM instance")).all()
    assert [tuple(row) for row in rows] == [(None, None)]
    engine.dispose()
