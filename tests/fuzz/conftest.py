"""A live Fovea (SQLite index and a blob folder, or PostgreSQL and S3) per fuzz module, with a small study
stored first.

Why: fuzzed paths are only interesting when some of them name things that exist, so each server holds one
study of one series with two instances (one of three frames) before the fuzzers start.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest
from pydicom.uid import generate_uid

from app.imaging.codec_pool import CodecPool
from app.store.infra.db import create_index_engine, migrate
from app.store.tables import Base
from tests.conftest import Backend, LiveServer, start_live_server
from tests.dicom_files import make_instance, multipart_body, stow_content_type


@dataclass(frozen=True)
class StoredStudy:
    """What the server held before fuzzing: one study, one series, its instances (first: 3 frames)."""

    study: str
    series: str
    instances: tuple[str, ...]
    frames: int = 3


@dataclass
class FuzzServer:
    server: LiveServer
    backend: Backend
    stored: StoredStudy

    @property
    def dicomweb(self) -> str:
        return self.server.dicomweb


def store_study(server: LiveServer) -> StoredStudy:
    study, series = generate_uid(), generate_uid()
    instances = (generate_uid(), generate_uid())
    small = {"study_uid": study, "series_uid": series, "rows": 16, "columns": 16}
    files = [
        make_instance(sop_uid=instances[0], frames=3, **small),  # type: ignore[arg-type]
        make_instance(sop_uid=instances[1], seed=1, **small),  # type: ignore[arg-type]
    ]
    response = httpx.post(
        f"{server.dicomweb}/studies",
        content=multipart_body(files),
        headers={"Content-Type": stow_content_type()},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return StoredStudy(study, series, instances)


# `make fuzz FUZZ_BACKEND=postgres-s3` runs the fuzzers on PostgreSQL and S3 (moto) instead.
FUZZ_BACKEND = os.environ.get("FOVEA_FUZZ_BACKEND", "sqlite-file")


def fuzz_backend(request: pytest.FixtureRequest, root: Path) -> Backend:
    if FUZZ_BACKEND == "sqlite-file":
        engine = create_index_engine(f"sqlite:///{root / 'index.db'}")
        migrate(engine)
        return Backend(FUZZ_BACKEND, engine, str(root / "data" / "blobs"), root / "data")
    assert FUZZ_BACKEND == "postgres-s3", f"FOVEA_FUZZ_BACKEND={FUZZ_BACKEND}: sqlite-file or postgres-s3"
    engine = create_index_engine(request.getfixturevalue("postgres_url"))
    migrate(engine)
    with engine.begin() as connection:  # the session's schema: start from an empty index
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    endpoint = request.getfixturevalue("moto_endpoint")
    bucket = f"fovea-fuzz-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=bucket)
    return Backend(FUZZ_BACKEND, engine, f"s3://{bucket}", root / "data", endpoint)


FUZZ_DEID_SECRET = "f" * 40


@pytest.fixture(scope="module")
def fuzz_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    worker_pool: Executor,
    codec_pool: CodecPool,
) -> Iterator[FuzzServer]:
    backend = fuzz_backend(request, tmp_path_factory.mktemp("fuzz"))
    try:
        # With a de-identification secret, so the de-identified rendition answers rather than 404.
        with start_live_server(backend, worker_pool, codec_pool, deid_secret=FUZZ_DEID_SECRET) as server:
            yield FuzzServer(server, backend, store_study(server))
    finally:
        backend.engine.dispose()
