"""Small instances are stored in the server process, large ones in worker processes started on first use.

An idle embedded server (`fovea serve`, SQLite + folder) is one process: no fork server, no resource
tracker, no ingest workers until an instance larger than FOVEA_INGEST_INLINE_KB arrives. An instance
stored inline leaves exactly what a worker process would have left, and a hostile small instance
fails as cleanly inline as in a worker, with the server still serving.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import struct
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.uid import JPEGLSLossless, generate_uid
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.settings import Settings
from app.store.infra.blobs import BlobStore
from app.store.infra.db import create_index_engine, migrate
from app.store.policies import DuplicatePolicy
from app.store.tables import BulkDataRow, FrameFragmentRow, Instance, InstanceMetadata
from app.store.write.ingest import Outcome
from app.store.write.ingest_pool import IngestPool, IngestTarget
from tests.dicom_files import make_instance, multipart_body, stow_content_type
from tests.hostile_files import deflate_bomb
from tests.integration.server_processes import ServerProcess, running_server
from tests.integration.stow_helpers import items

STORED_SEQUENCE, FAILED_SEQUENCE = "00081199", "00081198"
MIB = 1024 * 1024
# Differ between two stores of the same file by design: keys, row numbers, when, which request.
VOLATILE_COLUMNS = {"pk", "series_pk", "blob_key", "data_blob_key", "batch_id", "created_at", "updated_at"}


# --- the process tree of a real `fovea serve` --------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (fork server, resource tracker, and the workers under the fork server)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        for task in Path(f"/proc/{current}/task").iterdir():
            children = [int(c) for c in (task / "children").read_text().split()]
            found.extend(children)
            pending.extend(children)
    return found


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def stow(server: ServerProcess, parts: list[bytes]) -> httpx.Response:
    headers = {"Content-Type": stow_content_type(), "Accept": "application/dicom+json"}
    return httpx.post(
        f"{server.dicomweb}/studies", content=multipart_body(parts), headers=headers, timeout=120
    )


@pytest.fixture
def embedded_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """`fovea serve` with nothing set but its data folder (and a deflate limit the bomb exceeds)."""
    settings = Settings(data_dir=tmp_path / "data", max_inflated_bytes=16 * MIB)
    with running_server(settings, tmp_path / "server.log") as server:
        yield server


def test_worker_processes_start_with_the_first_instance_too_large_to_store_inline(
    embedded_server: ServerProcess,
) -> None:
    pid = embedded_server.process.pid
    assert descendants(pid) == [], "an idle server starts no helper processes"

    small = make_instance(rows=64, columns=64)
    response = stow(embedded_server, [small])
    assert response.status_code == 200, response.text
    assert descendants(pid) == [], "a small instance is stored in the server process"

    large = make_instance(rows=512, columns=512, frames=5)  # 2.5 MiB: over the 2048 KiB default
    response = stow(embedded_server, [large])
    assert response.status_code == 200, response.text
    assert len(items(response.json(), STORED_SEQUENCE)) == 1
    helpers = [command_line(child) for child in descendants(pid)]
    assert any("multiprocessing.forkserver" in line for line in helpers), helpers
    assert len(helpers) >= 3, helpers  # the fork server, its resource tracker, at least one worker


def truncated(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def nested_sequences(depth: int) -> bytes:
    """A Part 10 file whose last element is `depth` sequences nested inside each other, each in an
    item of undefined length (explicit VR little endian, PS3.5 7.5): deep recursion for any reader."""
    opening = struct.pack("<HH2sHI", 0x7FE1, 0x1010, b"SQ", 0, 0xFFFFFFFF) + struct.pack(
        "<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF
    )
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return make_instance(rows=8, columns=8) + opening * depth + closing * depth


def test_hostile_small_instances_fail_cleanly_inline_and_the_server_keeps_serving(
    embedded_server: ServerProcess,
) -> None:
    hostile = {
        "truncated": truncated(make_instance(rows=128, columns=128)),
        "not DICOM": b"\x00" * 128 + b"DICM" + b"\xff" * 4096,
        "deflate bomb": deflate_bomb(64 * MIB),
        "deeply nested": nested_sequences(20_000),
    }
    assert all(len(data) < 2048 * 1024 for data in hostile.values()), "each one is stored inline"
    for name, data in hostile.items():
        response = stow(embedded_server, [data])
        # the part failed for what it is (400, 409, 413: the client's fault), never 500 or 503
        assert 400 <= response.status_code < 500, f"{name}: {response.status_code} {response.text[:300]}"
        assert len(items(response.json(), FAILED_SEQUENCE)) == 1, name
        assert httpx.get(f"{embedded_server.base_url}/livez", timeout=10).status_code == 200, name
    good = make_instance(rows=64, columns=64)
    assert stow(embedded_server, [good]).status_code == 200
    assert embedded_server.process.poll() is None
    assert descendants(embedded_server.process.pid) == [], "every hostile file was handled inline"


# --- inline and worker ingest store the same -------------------------------------------------------


def embedded_target(folder: Path) -> tuple[IngestTarget, Engine]:
    """An embedded store (SQLite + folder) under `folder`, migrated."""
    settings = Settings(data_dir=folder, duplicate_policy=DuplicatePolicy.REJECT)
    engine = create_index_engine(settings.resolved_database_url)
    migrate(engine)
    return settings.ingest_target(), engine


def spooled(target: IngestTarget, name: str, data: bytes) -> Path:
    target.spool_directory.mkdir(parents=True, exist_ok=True)
    path = target.spool_directory / name
    path.write_bytes(data)
    return path


def stored_state(engine: Engine, blobs: BlobStore, sop_instance_uid: str) -> dict[str, Any]:
    """Everything an instance left in the index and the blob store, but for what differs by design."""
    with Session(engine) as session:
        instance = session.scalars(
            select(Instance).where(Instance.sop_instance_uid == sop_instance_uid)
        ).one()
        row = {c.name: getattr(instance, c.key) for c in Instance.__table__.columns}
        metadata = session.get(InstanceMetadata, instance.pk)
        frames = session.scalars(
            select(FrameFragmentRow).where(FrameFragmentRow.instance_pk == instance.pk)
        ).all()
        bulk = session.scalars(select(BulkDataRow).where(BulkDataRow.instance_pk == instance.pk)).all()

        def columns(record: Any) -> dict[str, Any]:
            return {
                c.name: getattr(record, c.key) for c in record.__table__.columns if c.name != "instance_pk"
            }

        return {
            "instance": {name: value for name, value in row.items() if name not in VOLATILE_COLUMNS},
            "metadata": metadata.dicom_json if metadata else None,
            "frames": sorted((tuple(sorted(columns(f).items())) for f in frames), key=repr),
            "bulkdata": sorted((tuple(sorted(columns(b).items())) for b in bulk), key=repr),
            "blob": blobs.read_range(instance.blob_key, 0, instance.blob_size),
        }


def test_inline_ingest_stores_exactly_what_a_worker_process_stores(
    tmp_path: Path, worker_pool: Executor
) -> None:
    inline_target, inline_engine = embedded_target(tmp_path / "inline")
    pooled_target, pooled_engine = embedded_target(tmp_path / "pooled")
    study, series = generate_uid(), generate_uid()
    files = [
        make_instance(study_uid=study, series_uid=series, rows=64, columns=64, seed=1),
        make_instance(study_uid=study, series_uid=series, rows=128, columns=128, frames=3, seed=2),
    ]
    large = make_instance(study_uid=study, series_uid=series, rows=128, columns=128, frames=8, seed=3)
    limit = max(len(data) for data in files)  # `large` is over it
    inline = IngestPool(inline_target, 2, executor=worker_pool, inline_bytes=limit)
    pooled = IngestPool(pooled_target, 2, executor=worker_pool, inline_bytes=0)

    async def store(pool: IngestPool, target: IngestTarget, parts: list[bytes]) -> list[Any]:
        paths = [spooled(target, f"part-{n}.dcm", data) for n, data in enumerate(parts)]
        return await pool.ingest(paths, expected_study_uid=None, batch_id=generate_uid()[-32:])

    # the large one in the middle: results come back in request order whichever way each went
    inline_results = asyncio.run(store(inline, inline_target, [files[0], large, files[1]]))
    pooled_results = asyncio.run(store(pooled, pooled_target, [files[0], large, files[1]]))
    assert [r.outcome for r in inline_results] == [Outcome.STORED] * 3
    assert [r.sop_instance_uid for r in inline_results] == [r.sop_instance_uid for r in pooled_results]
    inline_blobs, pooled_blobs = inline_target.open_blob_store(), pooled_target.open_blob_store()
    try:
        for result in inline_results:
            uid = result.sop_instance_uid
            assert stored_state(inline_engine, inline_blobs, uid) == stored_state(
                pooled_engine, pooled_blobs, uid
            )
        assert list(inline_target.spool_directory.iterdir()) == [], "inline ingest consumed its files"
    finally:
        inline_engine.dispose()
        pooled_engine.dispose()
        shutil.rmtree(tmp_path / "inline", ignore_errors=True)


def test_nothing_is_stored_inline_when_pixels_are_converted_at_ingest(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, storage_transfer_syntax=JPEGLSLossless)
    pool = IngestPool(settings.ingest_target(), 1, inline_bytes=2048 * 1024)
    assert pool.inline_bytes == 0
    assert not pool.processes_started
    pool.close()


def test_a_worker_that_died_while_idle_is_replaced_for_the_next_instance(tmp_path: Path) -> None:
    target, engine = embedded_target(tmp_path / "store")
    pool = IngestPool(target, 1, inline_bytes=0)  # its own worker processes, started on first use

    async def store(data: bytes) -> Outcome:
        path = spooled(target, f"{generate_uid()}.dcm", data)
        (result,) = await pool.ingest([path], expected_study_uid=None, batch_id=generate_uid()[-32:])
        return result.outcome

    try:
        assert asyncio.run(store(make_instance(seed=1))) is Outcome.STORED
        broken = pool._executor
        workers = list(getattr(broken, "_processes", {}).values())
        assert workers, "the first instance started a worker process"
        for worker in workers:
            worker.kill()  # as the memory killer would, between two requests
        deadline = time.monotonic() + 30
        while not getattr(broken, "_broken", False):  # the pool has noticed
            assert time.monotonic() < deadline, "the pool never noticed its worker died"
            time.sleep(0.01)
        assert asyncio.run(store(make_instance(seed=2))) is Outcome.STORED
        assert pool._executor is not broken
    finally:
        pool.close()
        engine.dispose()


def test_the_digest_taken_while_spooling_is_the_one_recorded_inline_and_in_a_worker(
    embedded_server: ServerProcess, tmp_path: Path
) -> None:
    """STOW-RS hashes each part as it spools it; ingest records that digest wherever it runs."""
    small = make_instance(rows=64, columns=64, seed=11)
    large = make_instance(rows=512, columns=512, frames=5, seed=12)  # over the inline limit
    response = stow(embedded_server, [small, large])
    assert response.status_code == 200, response.text
    settings = Settings(data_dir=tmp_path / "data")
    engine = create_index_engine(settings.resolved_database_url)
    blobs = settings.ingest_target().open_blob_store()
    try:
        with Session(engine) as session:
            rows = session.scalars(select(Instance)).all()
            recorded = {row.blob_size: (row.sha256, row.blob_key) for row in rows}
        assert sorted(recorded) == sorted([len(small), len(large)])
        for sent in (small, large):
            digest, blob_key = recorded[len(sent)]
            stored = blobs.read_range(blob_key, 0, len(sent))
            assert digest == hashlib.sha256(sent).hexdigest() == hashlib.sha256(stored).hexdigest()
    finally:
        engine.dispose()
