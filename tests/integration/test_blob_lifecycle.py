"""Blob lifecycle on every back end: deferred deletion of replaced blobs, orphan collection, the
ingest deadline that makes collection safe, and reads that a replacement lands in the middle of.

The interleavings are made exact with a hook on the index engine: the first time a read sends a
chosen statement, a real replacement (the ingest pipeline, its own transaction) commits right then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from sqlalchemy import event

from app.store.infra.blobs import new_blob_key
from app.store.infra.spool import LOCK_NAME, Reclaimed
from app.store.policies import DuplicatePolicy
from app.store.upkeep.deferred_deletion import delete_due_blobs, schedule_blob_deletion
from app.store.upkeep.garbage import BlobCollector, collect_orphans
from app.store.write.ingest import Ingestor, Outcome
from app.store.write.parse import Problem
from tests.conftest import Backend, LiveServer
from tests.dicom_files import corpus_file, make_instance, new_instance_uids
from tests.integration.stow_helpers import (
    index_counts,
    pending_deletions,
    post_stow,
    stored_bytes,
    stored_instance,
)
from tests.integration.test_wado_instances import ANY_SYNTAX, instance_url, multipart_parts, read

OCTET_PARTS = 'multipart/related; type="application/octet-stream"'


def spool(backend: Backend, data: bytes) -> Path:
    path = backend.blobs.spool_directory / f"{generate_uid()}.dcm"
    path.write_bytes(data)
    return path


def current_key(backend: Backend, sop: str) -> str:
    instance = stored_instance(backend, sop)
    assert instance is not None
    return instance.blob_key


def test_replacement_keeps_the_old_blob_until_its_deletion_is_due(backend: Backend) -> None:
    sop = generate_uid()
    first, second = make_instance(sop_uid=sop, seed=1), make_instance(sop_uid=sop, seed=2)
    assert backend.ingestor().ingest(spool(backend, first)).outcome is Outcome.STORED
    old_key = current_key(backend, sop)
    before = datetime.now(UTC)
    assert backend.ingestor().ingest(spool(backend, second)).outcome is Outcome.REPLACED
    new_key = current_key(backend, sop)

    assert pending_deletions(backend) == {old_key}
    assert delete_due_blobs(backend.engine, backend.blobs, now=before) == Reclaimed()
    assert backend.blob_keys() == {old_key, new_key}
    assert backend.blobs.read_range(old_key, 0, len(first)) == first  # a reader that looked it up

    due = before + timedelta(minutes=5, seconds=30)  # past the default grace period of 5 minutes
    assert delete_due_blobs(backend.engine, backend.blobs, now=due, dry_run=True) == Reclaimed(1, len(first))
    assert backend.blob_keys() == {old_key, new_key}
    assert delete_due_blobs(backend.engine, backend.blobs, now=due) == Reclaimed(1, len(first))
    assert backend.blob_keys() == {new_key}
    assert pending_deletions(backend) == set()
    assert stored_bytes(backend, sop) == second


def test_grace_period_comes_from_the_ingestor(backend: Backend) -> None:
    sop = generate_uid()
    ingestor = Ingestor(backend.engine, backend.blobs, DuplicatePolicy.REPLACE, deletion_grace_s=0)
    ingestor.ingest(spool(backend, make_instance(sop_uid=sop, seed=1)))
    old_key = current_key(backend, sop)
    ingestor.ingest(spool(backend, make_instance(sop_uid=sop, seed=2)))
    assert delete_due_blobs(backend.engine, backend.blobs).count == 1
    assert old_key not in backend.blob_keys()


def test_a_blob_referenced_again_is_never_deleted(backend: Backend) -> None:
    sop = generate_uid()
    data = make_instance(sop_uid=sop)
    backend.ingestor().ingest(spool(backend, data))
    key = current_key(backend, sop)
    with backend.engine.begin() as connection:  # a scheduling mistake must not cost data
        schedule_blob_deletion(connection, key, datetime.now(UTC) - timedelta(seconds=1))

    assert delete_due_blobs(backend.engine, backend.blobs) == Reclaimed()
    assert stored_bytes(backend, sop) == data
    assert pending_deletions(backend) == set()


def test_failed_replacement_schedules_nothing(backend: Backend) -> None:
    from tests.integration.test_ingest_atomicity import failing_frame_inserts

    sop = generate_uid()
    backend.ingestor().ingest(spool(backend, make_instance(sop_uid=sop, seed=1)))
    keys = backend.blob_keys()
    with failing_frame_inserts(backend):
        result = backend.ingestor().ingest(spool(backend, make_instance(sop_uid=sop, seed=2)))
    assert result.outcome is Outcome.FAILED
    assert pending_deletions(backend) == set()  # rolled back with the replacement
    assert backend.blob_keys() == keys


def publish_orphan(backend: Backend, data: bytes) -> str:
    """A blob published with no index row: what a crash between the two steps of ingest leaves."""
    key = new_blob_key()
    backend.blobs.put_file(key, spool(backend, data))
    return key


def test_listing_shows_every_blob_with_size_and_publication_time(backend: Backend) -> None:
    start = datetime.now(UTC) - timedelta(seconds=5)  # S3 and file times have whole-second precision
    keys = {publish_orphan(backend, b"x" * size): size for size in (1, 10, 1000)}
    listed = {blob.key: blob for blob in backend.blobs.iter_blobs()}
    assert {key: blob.size for key, blob in listed.items()} == keys
    end = datetime.now(UTC) + timedelta(seconds=5)
    assert all(start <= blob.published <= end for blob in listed.values())


def test_orphans_are_collected_only_past_the_grace_period(backend: Backend) -> None:
    sop, replaced = generate_uid(), generate_uid()
    backend.ingestor().ingest(spool(backend, make_instance(sop_uid=sop)))
    backend.ingestor().ingest(spool(backend, make_instance(sop_uid=replaced, seed=1)))
    backend.ingestor().ingest(spool(backend, make_instance(sop_uid=replaced, seed=2)))
    orphan = publish_orphan(backend, b"half-stored" * 10)
    keep = backend.blob_keys() - {orphan}

    recent = datetime.now(UTC) - timedelta(hours=1)
    assert collect_orphans(backend.engine, backend.blobs, older_than=recent) == Reclaimed()
    later = datetime.now(UTC) + timedelta(minutes=1)
    dry = collect_orphans(backend.engine, backend.blobs, older_than=later, dry_run=True)
    assert dry == Reclaimed(1, 110)
    assert orphan in backend.blob_keys()

    assert collect_orphans(backend.engine, backend.blobs, older_than=later) == Reclaimed(1, 110)
    # what instances refer to, and the replaced blob waiting for its deletion, stay
    assert backend.blob_keys() == keep
    assert len(pending_deletions(backend)) == 1


def test_ingest_gives_up_when_indexing_outlasts_half_the_orphan_grace(backend: Backend) -> None:
    ingestor = Ingestor(backend.engine, backend.blobs, DuplicatePolicy.REPLACE, orphan_grace_s=0)
    result = ingestor.ingest(spool(backend, make_instance()))
    assert result.outcome is Outcome.FAILED
    assert result.problem is Problem.STORAGE_FAILURE
    assert "FOVEA_ORPHAN_GRACE_S" in result.message
    assert index_counts(backend).instances == 0
    assert backend.blob_keys() == set()


# --- Reads that a replacement lands in the middle of ---


@contextmanager
def replacement_during(
    backend: Backend, when: Callable[[str], bool], replacement: bytes, *, moment: str
) -> Iterator[threading.Event]:
    """Replace the instance the first time the index runs a statement `when` picks (`moment`:
    "before_cursor_execute" or "after_cursor_execute"); the event says it happened."""
    happened = threading.Event()

    def hook(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if happened.is_set() or not when(statement):
            return
        happened.set()
        result = backend.ingestor().ingest(spool(backend, replacement))
        assert result.outcome is Outcome.REPLACED, result

    event.listen(backend.engine, moment, hook)
    try:
        yield happened
    finally:
        event.remove(backend.engine, moment, hook)


def is_frame_table_read(statement: str) -> bool:
    return "FROM frame" in statement and "WHERE frame.instance_pk" in statement


def is_scope_lookup(statement: str) -> bool:
    return "instance.blob_key" in statement and "FROM instance JOIN series" in statement


def pixels(data: bytes) -> bytes:
    return bytes(np.ascontiguousarray(read(data).pixel_array).astype("<i2").tobytes())


def test_pixeldata_read_whose_instance_is_replaced_before_its_frames_are_read(
    live_server: LiveServer, backend: Backend
) -> None:
    uids = new_instance_uids()
    first = make_instance(**uids, frames=3, seed=1)
    second = make_instance(**uids, frames=3, seed=2)
    assert post_stow(live_server, [first]).status_code == 200
    url = instance_url(live_server, read(first)) + "/pixeldata"

    with replacement_during(backend, is_frame_table_read, second, moment="before_cursor_execute") as done:
        response = httpx.get(url, headers={"Accept": OCTET_PARTS})

    assert done.is_set()
    assert response.status_code == 200  # was 500: KeyError 1, the frame table read came back empty
    body = b"".join(part for _, part in multipart_parts(response))
    assert body == pixels(second)  # looked up again: the replacement, whole


def test_instance_read_whose_instance_is_replaced_after_the_lookup_gets_the_old_one(
    live_server: LiveServer, backend: Backend
) -> None:
    uids = new_instance_uids()
    first, second = make_instance(**uids, seed=1), make_instance(**uids, seed=2)
    assert post_stow(live_server, [first]).status_code == 200
    url = instance_url(live_server, read(first))

    with replacement_during(backend, is_scope_lookup, second, moment="after_cursor_execute") as done:
        response = httpx.get(url, headers={"Accept": ANY_SYNTAX})

    assert done.is_set()
    assert response.status_code == 200  # was 500: the old blob was deleted under the read
    [(_, body)] = multipart_parts(response)
    assert body == first  # what it looked up, bit for bit
    assert stored_bytes(backend, uids["sop_uid"]) == second


def test_transcoded_instance_read_whose_frames_vanish_gets_the_replacement(
    live_server: LiveServer, backend: Backend
) -> None:
    big_endian = corpus_file("MR_small_bigendian.dcm")  # served as Explicit VR LE: pixels rewritten
    data = big_endian.path.read_bytes()
    ds = pydicom.dcmread(big_endian.path)
    ds.ImageComments = "replaced now"  # (the patient's identity must stay the same)
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    assert post_stow(live_server, [data]).status_code == 200
    url = instance_url(live_server, ds)
    ele = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1'

    with replacement_during(
        backend, is_frame_table_read, buffer.getvalue(), moment="before_cursor_execute"
    ) as done:
        response = httpx.get(url, headers={"Accept": ele})

    assert done.is_set()
    assert response.status_code == 200
    [(_, body)] = multipart_parts(response)
    assert read(body).ImageComments == "replaced now"  # looked up again: the replacement
    assert read(body).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert np.array_equal(read(body).pixel_array, pydicom.dcmread(BytesIO(data)).pixel_array)


# --- The server's own collector ---


def wait_for(condition: Callable[[], bool], timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_collector_cleans_at_start_then_deletes_due_blobs_as_they_fall_due(backend: Backend) -> None:
    dead = backend.blobs.spool_root / "4242-deadbeef"  # what a killed process left
    dead.mkdir(parents=True)
    (dead / LOCK_NAME).touch()
    (dead / "stow-1.part").write_bytes(b"left behind")
    sop = generate_uid()
    backend.ingestor().ingest(spool(backend, make_instance(sop_uid=sop, seed=1)))
    old_key = current_key(backend, sop)
    quick = Ingestor(backend.engine, backend.blobs, DuplicatePolicy.REPLACE, deletion_grace_s=0.5)

    collector = BlobCollector(backend.engine, backend.blobs, orphan_grace_s=3600, interval_s=0.05)
    collector.start()
    try:
        assert wait_for(lambda: not dead.exists())
        quick.ingest(spool(backend, make_instance(sop_uid=sop, seed=2)))  # replaced while it runs
        assert old_key in backend.blob_keys()  # kept for the grace period...
        # ...then deleted, the blob first and its row after
        assert wait_for(lambda: old_key not in backend.blob_keys() and not pending_deletions(backend))
    finally:
        collector.stop()
    assert backend.blob_keys() == {current_key(backend, sop)}


def test_no_collector_when_the_interval_is_zero(backend: Backend) -> None:
    from app.services import open_services

    services = open_services(backend.settings(gc_interval_s=0, ingest_workers=1))
    try:
        assert services.collector is None
    finally:
        services.close()


def test_bulkdata_read_whose_instance_is_replaced_after_the_lookup_gets_the_replacement(
    live_server: LiveServer, backend: Backend
) -> None:
    uids = new_instance_uids()
    first, second = make_instance(**uids, seed=1), make_instance(**uids, seed=2)
    assert post_stow(live_server, [first]).status_code == 200
    url = instance_url(live_server, read(first)) + "/bulkdata/7FE00010"

    with replacement_during(backend, is_scope_lookup, second, moment="after_cursor_execute") as done:
        response = httpx.get(url, headers={"Accept": "application/octet-stream"})

    assert done.is_set()
    assert response.status_code == 200  # was 404: the bulk data rows were read for the old row
    assert response.content == pixels(second)


def test_rendered_read_whose_frames_vanish_is_rendered_from_the_replacement(
    live_server: LiveServer, backend: Backend
) -> None:
    uids = new_instance_uids()
    first, second = make_instance(**uids, seed=1), make_instance(**uids, seed=2)
    assert post_stow(live_server, [first]).status_code == 200
    url = instance_url(live_server, read(first)) + "/rendered"
    png = {"Accept": "image/png"}

    with replacement_during(backend, is_frame_table_read, second, moment="before_cursor_execute") as done:
        response = httpx.get(url, headers=png)

    assert done.is_set()
    assert response.status_code == 200  # was 500: KeyError 1
    assert response.content == httpx.get(url, headers=png).content  # the replacement's image, as now
